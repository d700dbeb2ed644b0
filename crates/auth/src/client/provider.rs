//! Discovery: the provider's metadata and keys, checked against what Berth needs, and the
//! openidconnect client built on them.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, ClientId, ClientSecret, DiscoveryError,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenFields,
    IssuerUrl, LogoutProviderMetadata, ProviderMetadata, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::http::transport_detail;
use crate::claims::OtherClaims;
use crate::error::AuthError;
use crate::settings::OidcSettings;

/// Discovery metadata beyond what openidconnect models.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(super) struct ExtraMetadata {
    /// RFC 9207: the provider sends `iss` with every authorization response.
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 8414 / PKCE.
    #[serde(default)]
    pub(super) code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub(super) type Metadata = ProviderMetadata<
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

pub(super) type TokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub(super) type TokenResp = StandardTokenResponse<TokenFields, CoreTokenType>;
pub(super) type RpIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

pub(super) type RpClient = openidconnect::Client<
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
pub(super) struct Discovered {
    pub(super) metadata: Metadata,
    pub(super) client: RpClient,
}

pub(super) async fn discover_with(
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
