//! Asking the provider again, during a session, whether the person is still in their groups:
//! with the refresh token when there is one (a fresh ID token, else UserInfo with the fresh
//! access token), else UserInfo with the access token while it lasts. A removed group then
//! takes effect within the re-check interval, not at the next sign-in.

use openidconnect::{
    AccessToken, OAuth2TokenResponse, RefreshToken, RequestTokenError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::callback::token_error;
use super::provider::{Discovered, TokenResp};
use super::OidcClient;
use crate::claims::{groups_claim, GroupsClaim, OtherClaims};
use crate::error::AuthError;
use berth_domain::Role;

/// An access token this close to its expiry is not used for UserInfo.
const EXPIRY_MARGIN: time::Duration = time::Duration::seconds(30);

/// What the provider gave at sign-in or at the last refresh, kept to ask it again.
#[derive(Clone)]
pub struct ProviderTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("access_expires_at", &self.access_expires_at)
            .finish()
    }
}

impl ProviderTokens {
    /// From a token response; a provider that does not rotate refresh tokens sends none on a
    /// refresh, so the one in use (`previous_refresh`) is kept.
    pub(super) fn from_response(
        token: &TokenResp,
        previous_refresh: Option<&SecretString>,
        now: OffsetDateTime,
    ) -> Self {
        ProviderTokens {
            access_token: SecretString::from(token.access_token().secret().to_owned()),
            refresh_token: token
                .refresh_token()
                .map(|r| SecretString::from(r.secret().to_owned()))
                .or_else(|| previous_refresh.cloned()),
            access_expires_at: token
                .expires_in()
                .and_then(|d| time::Duration::try_from(d).ok())
                .map(|d| now + d),
        }
    }
}

/// The provider still vouches for the person: their groups now, and the tokens to keep.
#[derive(Debug)]
pub struct Rechecked {
    pub groups: Vec<String>,
    /// Mapped roles, sorted; empty means "no access".
    pub roles: Vec<Role>,
    pub tokens: ProviderTokens,
}

/// Why a re-check did not confirm the person.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    /// The provider no longer vouches for this sign-in (refresh refused, access token refused
    /// or expired with no refresh token, another subject, no groups claim): the session ends.
    #[error("the identity provider no longer confirms this sign-in: {0}")]
    Refused(String),
    /// The provider could not be asked now; the session's roles stand a while longer.
    #[error(transparent)]
    Unavailable(AuthError),
}

fn refused(e: AuthError) -> RecheckError {
    if e.is_transient() {
        RecheckError::Unavailable(e)
    } else {
        RecheckError::Refused(format!("{} ({})", e.kind(), e))
    }
}

impl OidcClient {
    /// Asks the provider whether `subject` is still signed in and in which groups (see the
    /// module). Never logs a token.
    #[tracing::instrument(name = "oidc.recheck", skip_all, fields(subject))]
    pub async fn recheck(
        &self,
        subject: &str,
        tokens: &ProviderTokens,
    ) -> Result<Rechecked, RecheckError> {
        tracing::Span::current().record("subject", subject);
        let result = self.recheck_inner(subject, tokens).await;
        match &result {
            Ok(r) => tracing::debug!(roles = ?r.roles, "groups confirmed at the provider"),
            Err(e) => tracing::info!(error = %e, "groups not confirmed at the provider"),
        }
        result
    }

    async fn recheck_inner(
        &self,
        subject: &str,
        tokens: &ProviderTokens,
    ) -> Result<Rechecked, RecheckError> {
        let discovered = self.inner.current();
        let now = (self.inner.clock)();
        let (groups, tokens) = match &tokens.refresh_token {
            Some(refresh) => self.refreshed(&discovered, subject, refresh, now).await?,
            None => {
                let usable = tokens
                    .access_expires_at
                    .is_none_or(|at| at - EXPIRY_MARGIN > now);
                if !usable {
                    return Err(RecheckError::Refused(
                        "the access token expired and the provider gave no refresh token \
                         (ask for the offline_access scope, or sign in again)"
                            .into(),
                    ));
                }
                let access = AccessToken::new(tokens.access_token.expose_secret().to_owned());
                let groups = self.userinfo_groups(&discovered, access, subject).await?;
                (groups, tokens.clone())
            }
        };
        let roles = self.inner.settings.roles_for(&groups);
        Ok(Rechecked {
            groups,
            roles,
            tokens,
        })
    }

    /// Refreshes, then reads the groups from the new ID token, else from UserInfo.
    async fn refreshed(
        &self,
        discovered: &std::sync::Arc<Discovered>,
        subject: &str,
        refresh: &SecretString,
        now: OffsetDateTime,
    ) -> Result<(Vec<String>, ProviderTokens), RecheckError> {
        let refresh_token = RefreshToken::new(refresh.expose_secret().to_owned());
        let request = discovered
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| {
                RecheckError::Refused(format!("the provider has no token endpoint: {e}"))
            })?;
        let token = match request.request_async(&self.inner.http).await {
            Ok(t) => t,
            // invalid_grant and the like: the provider ended the grant (signed out, removed).
            Err(e @ RequestTokenError::ServerResponse(_)) => return Err(refused(token_error(e))),
            Err(e) => return Err(RecheckError::Unavailable(token_error(e))),
        };
        let tokens = ProviderTokens::from_response(&token, Some(refresh), now);
        if let Some(id_token) = token.id_token() {
            let (verified, _) = self
                .verify(id_token, None, discovered.clone())
                .await
                .map_err(refused)?;
            if verified.subject != subject {
                return Err(RecheckError::Refused(
                    "the refreshed ID token names another person".into(),
                ));
            }
            if let Some(groups) = self.groups_in(&verified.other)? {
                return Ok((groups, tokens));
            }
        }
        let access = AccessToken::new(tokens.access_token.expose_secret().to_owned());
        let groups = self.userinfo_groups(discovered, access, subject).await?;
        Ok((groups, tokens))
    }

    async fn userinfo_groups(
        &self,
        discovered: &Discovered,
        access: AccessToken,
        subject: &str,
    ) -> Result<Vec<String>, RecheckError> {
        let claims = self
            .userinfo(discovered, access, subject)
            .await
            .map_err(refused)?
            .ok_or_else(|| {
                RecheckError::Refused(
                    "the provider has no UserInfo endpoint and gave no refresh token".into(),
                )
            })?;
        self.groups_in(&claims)?.ok_or_else(|| {
            RecheckError::Refused(format!(
                "the provider's answer has no '{}' claim (check the scopes and claim settings)",
                self.inner.settings.groups_claim
            ))
        })
    }

    /// The groups in `claims`, `None` when the claim is absent. A claim of the wrong shape is
    /// refused, as at sign-in it gives no roles.
    fn groups_in(&self, claims: &OtherClaims) -> Result<Option<Vec<String>>, RecheckError> {
        match groups_claim(&claims.claims, &self.inner.settings.groups_claim) {
            GroupsClaim::Present(g) => Ok(Some(g)),
            GroupsClaim::Absent => Ok(None),
            GroupsClaim::Unusable => Err(RecheckError::Refused(format!(
                "the '{}' claim is neither a string nor a list of strings",
                self.inner.settings.groups_claim
            ))),
        }
    }
}
