//! Berth's OpenID Connect relying party, free of any web framework: the server keeps a
//! [`PendingLogin`] in the session between [`OidcClient::begin_login`] and
//! [`OidcClient::complete_login`], and turns the resulting [`SignedIn`] into its own session.
//!
//! Authorization code flow with PKCE S256, `state` and `nonce`, RFC 9207 `iss` check, ID token
//! validation (signature, issuer, audience, expiry, nonce, `at_hash`), groups from the ID token
//! or UserInfo, groups mapped to [`berth_domain::Role`]s by configuration. See `docs/sso.md`.

mod claims;
mod client;
mod error;
mod lazy;
pub mod settings;

pub use client::{
    safe_return_to, CallbackParams, GroupsSource, OidcClient, PendingLogin, ProviderTokens,
    RecheckError, Rechecked, SignedIn, VerifiedIdToken, LOGIN_TIMEOUT,
};
pub use error::{AuthError, TokenProblem};
pub use lazy::LazyOidcClient;
pub use settings::{ConfigError, ConfigProblem, OidcSettings};

/// Re-exported so callers name the same `Url` type as the API.
pub use openidconnect::url::Url;
