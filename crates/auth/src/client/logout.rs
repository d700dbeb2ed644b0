//! RP-initiated logout: the provider's end-session URL.

use openidconnect::url::Url;
use secrecy::{ExposeSecret, SecretString};

use super::OidcClient;

impl OidcClient {
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
