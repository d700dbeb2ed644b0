//! Starting a login: the authorization URL (PKCE S256, `state`, `nonce`) and what the server
//! keeps until the provider redirects back.

use std::time::Duration;

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::url::Url;
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge, Scope};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{expose, OidcClient};

/// How long a started login may take before its callback is refused.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A login in progress, kept server-side (in the session, under one key) between
/// [`OidcClient::begin_login`] and [`OidcClient::complete_login`]. Remove it from the session
/// **before** completing, so a callback can be used at most once.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    #[serde(serialize_with = "expose")]
    pub state: SecretString,
    #[serde(serialize_with = "expose")]
    pub nonce: SecretString,
    #[serde(serialize_with = "expose")]
    pub pkce_verifier: SecretString,
    /// Local path to return to after sign-in (always starts with a single `/`).
    pub return_to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &"[REDACTED]")
            .field("nonce", &"[REDACTED]")
            .field("pkce_verifier", &"[REDACTED]")
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Keeps `return_to` a local path: `/…` but not `//host` or `/\host` (open redirects).
pub fn safe_return_to(raw: &str) -> String {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && !raw.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        raw.to_owned()
    } else {
        "/".to_owned()
    }
}

impl OidcClient {
    /// Starts a login: the URL to send the browser to, and what to keep until the callback.
    /// Always PKCE S256, a fresh `state` and `nonce`. `return_to` is reduced to a local path.
    pub fn begin_login(&self, return_to: &str) -> (Url, PendingLogin) {
        self.begin_login_with(return_to, false)
    }

    /// Like [`begin_login`](Self::begin_login); with `force_login` the provider is asked
    /// (`prompt=login`) to show its login form even when it still has a session, e.g. for
    /// "sign in as someone else".
    pub fn begin_login_with(&self, return_to: &str, force_login: bool) -> (Url, PendingLogin) {
        let discovered = self.inner.current();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.inner.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if force_login {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = PendingLogin {
            state: SecretString::from(state.secret().clone()),
            nonce: SecretString::from(nonce.secret().clone()),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
            return_to: safe_return_to(return_to),
            created_at: (self.inner.clock)(),
        };
        (url, pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn return_to_stays_local() {
        assert_eq!(
            safe_return_to("/requests/42?tab=plan"),
            "/requests/42?tab=plan"
        );
        assert_eq!(safe_return_to("//evil.example"), "/");
        assert_eq!(safe_return_to("/\\evil.example"), "/");
        assert_eq!(safe_return_to("https://evil.example/"), "/");
        assert_eq!(safe_return_to("/a\nb"), "/");
        assert_eq!(safe_return_to(""), "/");
    }

    #[test]
    fn pending_login_round_trips_and_hides_secrets() {
        let p = PendingLogin {
            state: SecretString::from("st4te".to_owned()),
            nonce: SecretString::from("n0nce".to_owned()),
            pkce_verifier: SecretString::from("v3rifier".to_owned()),
            return_to: "/x".into(),
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        let json = serde_json::to_string(&p).unwrap();
        let back: PendingLogin = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state.expose_secret(), "st4te");
        assert_eq!(back.nonce.expose_secret(), "n0nce");
        assert_eq!(back.pkce_verifier.expose_secret(), "v3rifier");
        assert_eq!(back.created_at, p.created_at);
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("st4te") && !dbg.contains("n0nce") && !dbg.contains("v3rifier"),
            "{dbg}"
        );
    }
}
