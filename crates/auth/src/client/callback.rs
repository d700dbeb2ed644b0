//! The provider's redirect back: `state`, age and `iss` checks, the code exchange with the
//! PKCE verifier, the ID token, and the groups (from the ID token, else UserInfo).

use berth_domain::Role;
use openidconnect::core::{CoreErrorResponseType, CoreGenderClaim};
use openidconnect::{
    AccessToken, AuthorizationCode, HttpClientError, Nonce, OAuth2TokenResponse, PkceCodeVerifier,
    RequestTokenError, StandardErrorResponse, SubjectIdentifier, TokenResponse, UserInfoError,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::authorize::{PendingLogin, LOGIN_TIMEOUT};
use super::http::transport_detail;
use super::provider::Discovered;
use super::recheck::ProviderTokens;
use super::token::check_access_token_hash;
use super::OidcClient;
use crate::claims::{groups_claim, GroupsClaim, OtherClaims};
use crate::error::{clean_code, clean_description, AuthError, TokenProblem};

/// The query parameters of the provider's redirect to Berth's callback (deserialise the
/// callback's query string straight into it).
#[derive(Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// RFC 9207 issuer identifier.
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[REDACTED]"))
            .field("state", &self.state.as_ref().map(|_| "[REDACTED]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish()
    }
}

/// Where the user's groups were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupsSource {
    IdToken,
    UserInfo,
    /// Neither the ID token nor UserInfo had the groups claim: the user has no roles.
    Missing,
}

/// A person the provider vouched for, with the Berth roles their groups map to.
#[derive(Clone)]
pub struct SignedIn {
    pub issuer: String,
    pub subject: String,
    /// Display name (`name`, else `preferred_username`, else `email`).
    pub name: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    /// Groups as the provider sent them.
    pub groups: Vec<String>,
    pub groups_source: GroupsSource,
    /// Mapped roles, sorted; empty means "no access".
    pub roles: Vec<Role>,
    /// The raw ID token, kept only as `id_token_hint` for logout at the provider.
    pub id_token: SecretString,
    /// What the provider gave to ask it again about the person's groups during the session.
    pub tokens: ProviderTokens,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("preferred_username", &self.preferred_username)
            .field("groups", &self.groups)
            .field("groups_source", &self.groups_source)
            .field("roles", &self.roles)
            .field("id_token", &"[REDACTED]")
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl OidcClient {
    /// Finishes a login from the provider's redirect: checks `state` (constant time), the
    /// login's age, `iss` (RFC 9207), exchanges the code with the PKCE verifier, validates the
    /// ID token (signature, issuer, audience, expiry, nonce, `at_hash`), reads the groups claim
    /// (from UserInfo when the ID token lacks it) and maps groups to roles.
    #[tracing::instrument(name = "oidc.complete_login", skip_all, fields(subject))]
    pub async fn complete_login(
        &self,
        pending: &PendingLogin,
        params: &CallbackParams,
    ) -> Result<SignedIn, AuthError> {
        let result = self.complete_login_inner(pending, params).await;
        match &result {
            Ok(user) => {
                tracing::Span::current().record("subject", user.subject.as_str());
                tracing::info!(roles = ?user.roles, groups_source = ?user.groups_source, "sign-in verified");
            }
            Err(e) => tracing::warn!(kind = e.kind(), error = %e, detail = ?e, "sign-in refused"),
        }
        result
    }

    async fn complete_login_inner(
        &self,
        pending: &PendingLogin,
        params: &CallbackParams,
    ) -> Result<SignedIn, AuthError> {
        let settings = &self.inner.settings;

        // 1. state first: nothing else in a response that is not ours is worth reading.
        let state_ok = params.state.as_deref().is_some_and(|s| {
            bool::from(s.as_bytes().ct_eq(pending.state.expose_secret().as_bytes()))
        });
        if !state_ok {
            return Err(AuthError::StateMismatch);
        }

        // 2. age of the attempt.
        let age = (self.inner.clock)() - pending.created_at;
        if age > LOGIN_TIMEOUT || age < -time::Duration::minutes(5) {
            return Err(AuthError::LoginExpired);
        }

        // 3. RFC 9207: the response must come from our provider.
        let discovered = self.inner.current();
        match params.iss.as_deref() {
            Some(iss) if iss != settings.issuer_url => return Err(AuthError::IssuerMismatch),
            None if discovered
                .metadata
                .additional_metadata()
                .additional_metadata
                .authorization_response_iss_parameter_supported
                == Some(true) =>
            {
                return Err(AuthError::IssuerMismatch)
            }
            _ => {}
        }

        // 4. an error from the provider (user cancelled, access denied…).
        if let Some(error) = params.error.as_deref() {
            return Err(AuthError::IdpError {
                code: clean_code(error),
                description: params
                    .error_description
                    .as_deref()
                    .and_then(clean_description),
            });
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(AuthError::MalformedCallback)?;

        // 5. code → tokens, proving possession of the PKCE verifier.
        let token = discovered
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| AuthError::ProviderResponse {
                endpoint: "token",
                detail: e.to_string(),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(
                pending.pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&self.inner.http)
            .await
            .map_err(token_error)?;

        // 6. the ID token.
        let id_token = token
            .id_token()
            .ok_or(AuthError::InvalidToken(TokenProblem::Missing))?;
        let nonce = Nonce::new(pending.nonce.expose_secret().to_owned());
        let (verified, discovered) = self.verify(id_token, Some(&nonce), discovered).await?;
        check_access_token_hash(&discovered, id_token, &verified, &token)?;

        // 7. groups: ID token, else UserInfo, else none.
        let (groups, groups_source) = match groups_claim(
            &verified.other.claims,
            &settings.groups_claim,
        ) {
            GroupsClaim::Present(g) => (g, GroupsSource::IdToken),
            GroupsClaim::Unusable => {
                tracing::warn!(claim = %settings.groups_claim, "groups claim in the ID token is neither a string nor a list of strings; no roles");
                (Vec::new(), GroupsSource::Missing)
            }
            GroupsClaim::Absent => {
                self.groups_from_userinfo(
                    &discovered,
                    token.access_token().clone(),
                    &verified.subject,
                )
                .await?
            }
        };
        let roles = settings.roles_for(&groups);

        Ok(SignedIn {
            issuer: settings.issuer_url.clone(),
            subject: verified.subject,
            name: verified
                .name
                .or_else(|| verified.preferred_username.clone())
                .or_else(|| verified.email.clone()),
            email: verified.email,
            preferred_username: verified.preferred_username,
            groups,
            groups_source,
            roles,
            id_token: SecretString::from(id_token.to_string()),
            tokens: ProviderTokens::from_response(&token, None, (self.inner.clock)()),
        })
    }

    async fn groups_from_userinfo(
        &self,
        discovered: &Discovered,
        access_token: AccessToken,
        subject: &str,
    ) -> Result<(Vec<String>, GroupsSource), AuthError> {
        let claim = &self.inner.settings.groups_claim;
        let Some(claims) = self.userinfo(discovered, access_token, subject).await? else {
            tracing::warn!(%claim, "groups claim absent from the ID token and the provider has no UserInfo endpoint; no roles");
            return Ok((Vec::new(), GroupsSource::Missing));
        };
        Ok(match groups_claim(&claims.claims, claim) {
            GroupsClaim::Present(g) => (g, GroupsSource::UserInfo),
            GroupsClaim::Unusable => {
                tracing::warn!(%claim, "groups claim at UserInfo is neither a string nor a list of strings; no roles");
                (Vec::new(), GroupsSource::Missing)
            }
            GroupsClaim::Absent => {
                tracing::warn!(%claim, "groups claim absent from the ID token and UserInfo (check the scopes and the provider's claim settings); no roles");
                (Vec::new(), GroupsSource::Missing)
            }
        })
    }

    /// The provider's UserInfo claims for `subject` (checked to be the same person); `None`
    /// when it has no UserInfo endpoint. A server error counts as unreachable: trying again
    /// later may help.
    pub(super) async fn userinfo(
        &self,
        discovered: &Discovered,
        access_token: AccessToken,
        subject: &str,
    ) -> Result<Option<OtherClaims>, AuthError> {
        let Ok(request) = discovered.client.user_info(
            access_token,
            Some(SubjectIdentifier::new(subject.to_owned())),
        ) else {
            return Ok(None);
        };
        let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(&self.inner.http)
            .await
            .map_err(|e| match e {
                UserInfoError::Request(e) => AuthError::Unreachable {
                    endpoint: "userinfo",
                    detail: transport_detail(&e),
                },
                UserInfoError::ClaimsVerification(_) => AuthError::InvalidUserInfo,
                UserInfoError::Response(status, _, _) if status.is_server_error() => {
                    AuthError::Unreachable {
                        endpoint: "userinfo",
                        detail: format!("HTTP {status}"),
                    }
                }
                UserInfoError::Response(status, _, _) => AuthError::ProviderResponse {
                    endpoint: "userinfo",
                    detail: format!("HTTP {status}"),
                },
                other => AuthError::ProviderResponse {
                    endpoint: "userinfo",
                    detail: other.to_string(),
                },
            })?;
        Ok(Some(info.additional_claims().clone()))
    }
}

pub(super) fn token_error(
    e: RequestTokenError<
        HttpClientError<reqwest::Error>,
        StandardErrorResponse<CoreErrorResponseType>,
    >,
) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(r) => AuthError::CodeExchange {
            code: clean_code(r.error().as_ref()),
            description: r.error_description().and_then(|d| clean_description(d)),
        },
        RequestTokenError::Request(e) => AuthError::Unreachable {
            endpoint: "token",
            detail: transport_detail(&e),
        },
        // The body may hold tokens: never keep it, only where parsing failed.
        RequestTokenError::Parse(e, _body) => AuthError::CodeExchange {
            code: "invalid_response".into(),
            description: Some(format!("unreadable token response at {}", e.path())),
        },
        RequestTokenError::Other(msg) => AuthError::CodeExchange {
            code: "invalid_response".into(),
            description: clean_description(&msg),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_debug_hides_code_and_state() {
        let c = CallbackParams {
            code: Some("c0de".into()),
            state: Some("st4te".into()),
            ..Default::default()
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("c0de") && !dbg.contains("st4te"), "{dbg}");
    }
}
