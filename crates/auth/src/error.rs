//! Why a sign-in failed. Every message is safe to show the person signing in: no tokens, codes,
//! secrets or raw provider responses in `Display` or `Debug`. Details meant for operators
//! (`detail`, `description`) are plain text already stripped of anything secret.

use crate::settings::ConfigError;

/// What was wrong with an ID token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    /// The token response had no ID token.
    Missing,
    /// Not a well-formed signed JWT.
    Malformed,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud`/`azp` do not name Berth's client.
    WrongAudience,
    /// `exp` is in the past.
    Expired,
    /// `nonce` is not the one sent with this login.
    NonceMismatch,
    /// The signature does not verify with the provider's key.
    BadSignature,
    /// Signed by a key the provider does not publish (even after re-reading its keys).
    UnknownKey,
    /// Signed with an algorithm the provider does not advertise (or `none`).
    DisallowedAlgorithm,
    /// `at_hash` does not match the access token.
    AccessTokenHashMismatch,
    /// Another claim check failed (subject, issue time…).
    InvalidClaims,
}

impl TokenProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenProblem::Missing => "no ID token in the token response",
            TokenProblem::Malformed => "malformed ID token",
            TokenProblem::WrongIssuer => "issued by another provider",
            TokenProblem::WrongAudience => "issued for another application",
            TokenProblem::Expired => "expired",
            TokenProblem::NonceMismatch => {
                "nonce mismatch (token replayed or not from this sign-in)"
            }
            TokenProblem::BadSignature => "bad signature",
            TokenProblem::UnknownKey => "signed with an unknown key",
            TokenProblem::DisallowedAlgorithm => "signed with a disallowed algorithm",
            TokenProblem::AccessTokenHashMismatch => "does not match its access token",
            TokenProblem::InvalidClaims => "invalid claims",
        }
    }
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed sign-in, or a provider Berth cannot work with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The callback's `state` does not match the pending login: tampered, replayed, or from
    /// another browser tab's attempt.
    #[error("this sign-in response does not belong to your sign-in attempt (state mismatch); please sign in again")]
    StateMismatch,
    /// A callback arrived but no login is pending in this session (already completed, or the
    /// session was lost). Built by the server, which owns the session.
    #[error("no sign-in is in progress in this browser session (it may have been completed already); please sign in again")]
    NoPendingLogin,
    /// The pending login is older than the allowed time.
    #[error("this sign-in attempt took too long and has expired; please sign in again")]
    LoginExpired,
    /// The provider redirected back with an OAuth error (user cancelled, access denied…).
    #[error("the identity provider did not sign you in ({code})")]
    IdpError {
        /// The OAuth error code, restricted to `[a-z_]` (e.g. `access_denied`).
        code: String,
        /// The provider's description, restricted to printable ASCII; for logs.
        description: Option<String>,
    },
    /// The callback is missing its code (and carries no error).
    #[error("the sign-in response from the identity provider is incomplete")]
    MalformedCallback,
    /// RFC 9207: the `iss` on the redirect names another provider (mix-up attack), or is
    /// missing although the provider promises to send it.
    #[error("the sign-in response came from an unexpected identity provider")]
    IssuerMismatch,
    /// The token endpoint refused the code: used already, expired, wrong PKCE verifier, wrong
    /// client credentials.
    #[error(
        "the identity provider refused to complete the sign-in ({code}); please sign in again"
    )]
    CodeExchange {
        /// OAuth error code from the token endpoint (e.g. `invalid_grant`), or `invalid_response`.
        code: String,
        /// Provider's description, printable ASCII only; for logs.
        description: Option<String>,
    },
    /// The ID token failed validation.
    #[error("the identity token was rejected: {0}")]
    InvalidToken(TokenProblem),
    /// The UserInfo answer does not fit the ID token (other subject, bad signature).
    #[error("the identity provider's user information could not be verified")]
    InvalidUserInfo,
    /// The provider could not be reached (connection refused, DNS, timeout, TLS).
    #[error("the identity provider is unreachable right now; please try again later")]
    Unreachable {
        /// Which call failed: `discovery`, `token`, `userinfo`.
        endpoint: &'static str,
        /// Transport error text (no tokens: those travel in bodies and headers).
        detail: String,
    },
    /// The provider answered something Berth cannot use (HTTP error, unparsable JSON,
    /// discovery that does not fit the configuration).
    #[error("the identity provider gave an unusable answer ({endpoint}): {detail}")]
    ProviderResponse {
        endpoint: &'static str,
        detail: String,
    },
    /// The settings are incomplete or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl AuthError {
    /// A short stable code for audit records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::StateMismatch => "state_mismatch",
            AuthError::NoPendingLogin => "no_pending_login",
            AuthError::LoginExpired => "login_expired",
            AuthError::IdpError { .. } => "idp_error",
            AuthError::MalformedCallback => "malformed_callback",
            AuthError::IssuerMismatch => "issuer_mismatch",
            AuthError::CodeExchange { .. } => "code_exchange_failed",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::InvalidUserInfo => "invalid_userinfo",
            AuthError::Unreachable { .. } => "idp_unreachable",
            AuthError::ProviderResponse { .. } => "idp_bad_response",
            AuthError::Config(_) => "config",
        }
    }

    /// Whether trying again later may help (the provider was down), as opposed to starting
    /// a new sign-in or fixing the configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Unreachable { .. })
    }
}

/// Keeps an OAuth `error` code only if it looks like one (RFC 6749: `[a-z_]`, short).
pub(crate) fn clean_code(raw: &str) -> String {
    if !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        raw.to_owned()
    } else {
        "unrecognised_error".to_owned()
    }
}

/// Keeps printable ASCII (RFC 6749 `error_description` charset), at most 200 characters.
pub(crate) fn clean_description(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .take(200)
        .collect();
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_texts_are_sanitised() {
        assert_eq!(clean_code("access_denied"), "access_denied");
        assert_eq!(clean_code("<script>"), "unrecognised_error");
        assert_eq!(clean_code(""), "unrecognised_error");
        assert_eq!(
            clean_description("a\nb<\u{1F600}>\"c\""),
            Some("ab<>c".into())
        );
        assert_eq!(clean_description(" \n"), None);
        assert_eq!(clean_description(&"x".repeat(500)).unwrap().len(), 200);
    }

    #[test]
    fn messages_are_for_people() {
        let e = AuthError::IdpError {
            code: "access_denied".into(),
            description: Some("The user cancelled".into()),
        };
        assert_eq!(
            e.to_string(),
            "the identity provider did not sign you in (access_denied)"
        );
        assert_eq!(e.kind(), "idp_error");
        let e = AuthError::InvalidToken(TokenProblem::Expired);
        assert_eq!(e.to_string(), "the identity token was rejected: expired");
        assert!(AuthError::Unreachable {
            endpoint: "token",
            detail: "refused".into()
        }
        .is_transient());
    }
}
