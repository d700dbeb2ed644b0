//! ID token verification: signature (re-reading the provider's keys once when the `kid` is
//! unknown), issuer, audience, expiry, nonce, and `at_hash` against the access token.

use std::sync::Arc;

use openidconnect::{
    AccessTokenHash, ClaimsVerificationError, Nonce, OAuth2TokenResponse,
    SignatureVerificationError,
};

use super::provider::{Discovered, RpIdToken, TokenResp};
use super::{Clock, OidcClient};
use crate::claims::OtherClaims;
use crate::error::{AuthError, TokenProblem};

/// Claims read from a verified ID token.
#[derive(Debug)]
pub struct VerifiedIdToken {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub(super) access_token_hash: Option<AccessTokenHash>,
    pub(super) other: OtherClaims,
}

impl OidcClient {
    /// Validates a raw ID token exactly as [`complete_login`](Self::complete_login) does
    /// (signature with a re-read of the provider's keys when the `kid` is unknown, issuer,
    /// audience, expiry, nonce).
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: &str,
    ) -> Result<VerifiedIdToken, AuthError> {
        let token: RpIdToken = id_token
            .parse()
            .map_err(|_| AuthError::InvalidToken(TokenProblem::Malformed))?;
        let nonce = Nonce::new(nonce.to_owned());
        Ok(self
            .verify(&token, Some(&nonce), self.inner.current())
            .await?
            .0)
    }

    /// `nonce` is `None` only for an ID token from a refresh, which carries no new nonce.
    pub(super) async fn verify(
        &self,
        id_token: &RpIdToken,
        nonce: Option<&Nonce>,
        discovered: Arc<Discovered>,
    ) -> Result<(VerifiedIdToken, Arc<Discovered>), AuthError> {
        match verify_with(&discovered, id_token, nonce, &self.inner.clock) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                tracing::info!(
                    "ID token signed with an unknown key; re-reading the provider's keys"
                );
                let fresh = self.rediscover(&discovered).await?;
                let verified = verify_with(&fresh, id_token, nonce, &self.inner.clock)
                    .map_err(|e| AuthError::InvalidToken(token_problem(&e)))?;
                Ok((verified, fresh))
            }
            Err(e) => Err(AuthError::InvalidToken(token_problem(&e))),
            Ok(v) => Ok((v, discovered)),
        }
    }
}

fn chrono_now(clock: &Clock) -> chrono::DateTime<chrono::Utc> {
    let now = clock();
    chrono::DateTime::from_timestamp(now.unix_timestamp(), now.nanosecond()).unwrap_or_default()
}

fn verify_with(
    discovered: &Discovered,
    id_token: &RpIdToken,
    nonce: Option<&Nonce>,
    clock: &Clock,
) -> Result<VerifiedIdToken, ClaimsVerificationError> {
    let clock = clock.clone();
    let verifier = discovered
        .client
        .id_token_verifier()
        .set_time_fn(move || chrono_now(&clock));
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce)?,
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
    };
    Ok(VerifiedIdToken {
        subject: claims.subject().to_string(),
        name: claims
            .name()
            .and_then(|l| l.get(None))
            .map(|n| n.to_string()),
        email: claims.email().map(|e| e.to_string()),
        preferred_username: claims.preferred_username().map(|u| u.to_string()),
        access_token_hash: claims.access_token_hash().cloned(),
        other: claims.additional_claims().clone(),
    })
}

/// OIDC Core 3.1.3.8: when the ID token carries `at_hash`, it must match the access token.
pub(super) fn check_access_token_hash(
    discovered: &Discovered,
    id_token: &RpIdToken,
    verified: &VerifiedIdToken,
    token: &TokenResp,
) -> Result<(), AuthError> {
    let Some(expected) = &verified.access_token_hash else {
        return Ok(());
    };
    let bad = || AuthError::InvalidToken(TokenProblem::AccessTokenHashMismatch);
    let verifier = discovered.client.id_token_verifier();
    let alg = id_token.signing_alg().map_err(|_| bad())?;
    let key = id_token.signing_key(&verifier).map_err(|_| bad())?;
    let actual = AccessTokenHash::from_token(token.access_token(), alg, key).map_err(|_| bad())?;
    if actual != *expected {
        return Err(bad());
    }
    Ok(())
}

fn token_problem(e: &ClaimsVerificationError) -> TokenProblem {
    match e {
        ClaimsVerificationError::Expired(_) => TokenProblem::Expired,
        ClaimsVerificationError::InvalidAudience(_) => TokenProblem::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => TokenProblem::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => TokenProblem::NonceMismatch,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey => TokenProblem::UnknownKey,
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_)
            | SignatureVerificationError::NoSignature => TokenProblem::DisallowedAlgorithm,
            _ => TokenProblem::BadSignature,
        },
        ClaimsVerificationError::Unsupported(_) => TokenProblem::Malformed,
        _ => TokenProblem::InvalidClaims,
    }
}
