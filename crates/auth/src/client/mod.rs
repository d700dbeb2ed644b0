//! The relying party: discovery, the authorization request, and the checks on the way back.
//!
//! Split along the steps of a sign-in: `provider` (discovery and what Berth requires of it),
//! `authorize` (the authorization URL: PKCE, `state`, `nonce`), `callback` (the redirect back,
//! code exchange, groups), `token` (ID token verification and key rotation), `logout`
//! (RP-initiated logout), `recheck` (the person's groups asked again during a session) and
//! `http` (the one HTTP client for the provider).

mod authorize;
mod callback;
mod http;
mod logout;
mod provider;
mod recheck;
mod token;

use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::error::AuthError;
use crate::settings::OidcSettings;
use provider::{discover_with, Discovered};

pub use authorize::{safe_return_to, PendingLogin, LOGIN_TIMEOUT};
pub use callback::{CallbackParams, GroupsSource, SignedIn};
pub use recheck::{ProviderTokens, RecheckError, Rechecked};
pub use token::VerifiedIdToken;

type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Berth's OpenID Connect relying party for one provider. Cheap to clone; share one per process.
///
/// Discovery (metadata and signing keys) is fetched once by [`OidcClient::discover`] and cached.
/// When an ID token is signed by a key the cache does not know (the provider rotated its keys),
/// discovery runs again once and the token is checked against the fresh keys. That cannot be
/// abused to hammer the provider: ID tokens only arrive from the provider's own token endpoint
/// in exchange for a valid one-time code.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OidcSettings,
    http: reqwest::Client,
    discovered: RwLock<Arc<Discovered>>,
    /// Serialises re-discovery so that concurrent logins refresh the keys once.
    refresh: Mutex<()>,
    clock: Clock,
}

/// Serialises a secret in full: for the server-side session only, never for logs.
fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

impl OidcClient {
    /// Fetches the provider's discovery document and keys, and checks they fit Berth: the
    /// issuer matches exactly, the code flow is offered, PKCE S256 is possible, the token
    /// endpoint exists and takes a client secret.
    pub async fn discover(settings: OidcSettings) -> Result<Self, AuthError> {
        let http = http::http_client()?;
        let discovered = discover_with(&settings, &http).await?;
        tracing::info!(issuer = %settings.issuer_url, "OpenID Connect provider discovered");
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                discovered: RwLock::new(Arc::new(discovered)),
                refresh: Mutex::new(()),
                clock: Arc::new(OffsetDateTime::now_utc),
            }),
        })
    }

    /// Replaces the clock used for token expiry and login timeouts. For tests that check
    /// expiry without waiting; production keeps the system clock.
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            settings: arc.settings.clone(),
            http: arc.http.clone(),
            discovered: RwLock::new(arc.current()),
            refresh: Mutex::new(()),
            clock: arc.clock.clone(),
        });
        Self {
            inner: Arc::new(Inner {
                clock: Arc::new(clock),
                ..inner
            }),
        }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.inner.settings
    }

    /// Runs discovery again unless another task already replaced `stale`.
    async fn rediscover(&self, stale: &Arc<Discovered>) -> Result<Arc<Discovered>, AuthError> {
        let _guard = self.inner.refresh.lock().await;
        let current = self.inner.current();
        if !Arc::ptr_eq(&current, stale) {
            return Ok(current);
        }
        let fresh = Arc::new(discover_with(&self.inner.settings, &self.inner.http).await?);
        *self
            .inner
            .discovered
            .write()
            .unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }
}

impl Inner {
    fn current(&self) -> Arc<Discovered> {
        self.discovered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
