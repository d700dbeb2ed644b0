//! The relying party: discovery, the authorization request, and the checks on the way back.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_domain::Role;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, DiscoveryError,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IdToken,
    IdTokenFields, IssuerUrl, LogoutProviderMetadata, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, SubjectIdentifier,
    TokenResponse, UserInfoError,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::claims::{groups_claim, GroupsClaim, OtherClaims};
use crate::error::{clean_code, clean_description, AuthError, TokenProblem};
use crate::settings::OidcSettings;

/// How long a started login may take before its callback is refused.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Discovery metadata beyond what openidconnect models.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraMetadata {
    /// RFC 9207: the provider sends `iss` with every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 8414 / PKCE.
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<ExtraMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type TokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResp = StandardTokenResponse<TokenFields, CoreTokenType>;
type RpIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type RpClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResp,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// One discovery result: the provider's metadata (with its keys) and a client built on it.
struct Discovered {
    metadata: Metadata,
    client: RpClient,
}

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

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

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
#[derive(Clone, Serialize, Deserialize)]
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
    #[serde(serialize_with = "expose")]
    pub id_token: SecretString,
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
            .finish()
    }
}

/// Claims read from a verified ID token.
#[derive(Debug)]
pub struct VerifiedIdToken {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    access_token_hash: Option<AccessTokenHash>,
    other: OtherClaims,
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

/// The reqwest client for every call to the provider: no redirects (SSRF, as the openidconnect
/// docs advise), bounded time, rustls.
fn http_client() -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("berth-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::ProviderResponse {
            endpoint: "http client",
            detail: e.to_string(),
        })
}

fn transport_detail(e: &HttpClientError<reqwest::Error>) -> String {
    match e {
        HttpClientError::Reqwest(e) => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e.as_ref());
            while let Some(cause) = source {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                source = cause.source();
            }
            s
        }
        other => other.to_string(),
    }
}

impl OidcClient {
    /// Fetches the provider's discovery document and keys, and checks they fit Berth: the
    /// issuer matches exactly, the code flow is offered, PKCE S256 is possible, the token
    /// endpoint exists and takes a client secret.
    pub async fn discover(settings: OidcSettings) -> Result<Self, AuthError> {
        let http = http_client()?;
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
        let (verified, discovered) = self.verify(id_token, &nonce, discovered).await?;
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
                self.groups_from_userinfo(&discovered, &token, &verified.subject)
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
        })
    }

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
        Ok(self.verify(&token, &nonce, self.inner.current()).await?.0)
    }

    async fn verify(
        &self,
        id_token: &RpIdToken,
        nonce: &Nonce,
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

    async fn groups_from_userinfo(
        &self,
        discovered: &Discovered,
        token: &TokenResp,
        subject: &str,
    ) -> Result<(Vec<String>, GroupsSource), AuthError> {
        let claim = &self.inner.settings.groups_claim;
        let Ok(request) = discovered.client.user_info(
            token.access_token().clone(),
            Some(SubjectIdentifier::new(subject.to_owned())),
        ) else {
            tracing::warn!(%claim, "groups claim absent from the ID token and the provider has no UserInfo endpoint; no roles");
            return Ok((Vec::new(), GroupsSource::Missing));
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
                UserInfoError::Response(status, _, _) => AuthError::ProviderResponse {
                    endpoint: "userinfo",
                    detail: format!("HTTP {status}"),
                },
                other => AuthError::ProviderResponse {
                    endpoint: "userinfo",
                    detail: other.to_string(),
                },
            })?;
        Ok(
            match groups_claim(&info.additional_claims().claims, claim) {
                GroupsClaim::Present(g) => (g, GroupsSource::UserInfo),
                GroupsClaim::Unusable => {
                    tracing::warn!(%claim, "groups claim at UserInfo is neither a string nor a list of strings; no roles");
                    (Vec::new(), GroupsSource::Missing)
                }
                GroupsClaim::Absent => {
                    tracing::warn!(%claim, "groups claim absent from the ID token and UserInfo (check the scopes and the provider's claim settings); no roles");
                    (Vec::new(), GroupsSource::Missing)
                }
            },
        )
    }

    /// The provider's logout URL (RP-initiated logout), when discovery lists an
    /// `end_session_endpoint`: with the ID token as hint, Berth's client id, and where to come
    /// back (`post_logout_redirect`, else the configured default).
    pub fn end_session_url(
        &self,
        id_token_hint: Option<&SecretString>,
        post_logout_redirect: Option<&Url>,
    ) -> Option<Url> {
        let discovered = self.inner.current();
        let endpoint = discovered
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint.expose_secret());
            }
            q.append_pair("client_id", &self.inner.settings.client_id);
            q.append_pair(
                "post_logout_redirect_uri",
                post_logout_redirect
                    .unwrap_or(&self.inner.settings.end_session_redirect)
                    .as_str(),
            );
        }
        Some(url)
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

async fn discover_with(
    settings: &OidcSettings,
    http: &reqwest::Client,
) -> Result<Discovered, AuthError> {
    let issuer =
        IssuerUrl::new(settings.issuer_url.clone()).map_err(|e| AuthError::ProviderResponse {
            endpoint: "discovery",
            detail: format!("issuer URL: {e}"),
        })?;
    let metadata = Metadata::discover_async(issuer, http)
        .await
        .map_err(|e| match e {
            DiscoveryError::Request(e) => AuthError::Unreachable {
                endpoint: "discovery",
                detail: transport_detail(&e),
            },
            DiscoveryError::Response(status, _, _) => AuthError::ProviderResponse {
                endpoint: "discovery",
                detail: format!(
                    "HTTP {status} (is {} the right issuer URL?)",
                    settings.issuer_url
                ),
            },
            DiscoveryError::Validation(msg) => AuthError::ProviderResponse {
                endpoint: "discovery",
                detail: msg,
            },
            DiscoveryError::Parse(e) => AuthError::ProviderResponse {
                endpoint: "discovery",
                detail: format!("unreadable discovery document or key set ({})", e.path()),
            },
            other => AuthError::ProviderResponse {
                endpoint: "discovery",
                detail: other.to_string(),
            },
        })?;

    let unusable = |detail: String| AuthError::ProviderResponse {
        endpoint: "discovery",
        detail,
    };
    if !metadata
        .response_types_supported()
        .iter()
        .any(|r| r.as_slice() == [CoreResponseType::Code])
    {
        return Err(unusable(
            "the provider does not offer the authorization code flow".into(),
        ));
    }
    if let Some(methods) = &metadata
        .additional_metadata()
        .additional_metadata
        .code_challenge_methods_supported
    {
        if !methods.iter().any(|m| m == "S256") {
            return Err(unusable(
                "the provider does not support PKCE with S256".into(),
            ));
        }
    }
    if metadata.token_endpoint().is_none() {
        return Err(unusable("the provider has no token endpoint".into()));
    }
    // client_secret_basic is the default in the spec; fall back to client_secret_post.
    let auth_type = match metadata.token_endpoint_auth_methods_supported() {
        None => AuthType::BasicAuth,
        Some(m) if m.contains(&CoreClientAuthMethod::ClientSecretBasic) => AuthType::BasicAuth,
        Some(m) if m.contains(&CoreClientAuthMethod::ClientSecretPost) => AuthType::RequestBody,
        Some(_) => {
            return Err(unusable(
                "the token endpoint accepts neither client_secret_basic nor client_secret_post"
                    .into(),
            ))
        }
    };

    let client: RpClient = openidconnect::Client::from_provider_metadata(
        metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        Some(ClientSecret::new(settings.secret().to_owned())),
    )
    .set_redirect_uri(RedirectUrl::from_url(settings.redirect_url.clone()))
    .set_auth_type(auth_type);
    Ok(Discovered { metadata, client })
}

fn chrono_now(clock: &Clock) -> chrono::DateTime<chrono::Utc> {
    let now = clock();
    chrono::DateTime::from_timestamp(now.unix_timestamp(), now.nanosecond()).unwrap_or_default()
}

fn verify_with(
    discovered: &Discovered,
    id_token: &RpIdToken,
    nonce: &Nonce,
    clock: &Clock,
) -> Result<VerifiedIdToken, ClaimsVerificationError> {
    let clock = clock.clone();
    let verifier = discovered
        .client
        .id_token_verifier()
        .set_time_fn(move || chrono_now(&clock));
    let claims = id_token.claims(&verifier, nonce)?;
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
fn check_access_token_hash(
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

fn token_error(
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
