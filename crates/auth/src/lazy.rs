//! A client that discovers its provider on first use, so Berth can start (and show a clear
//! "provider unreachable" page) while the provider is down, and recovers once it is back.

use tokio::sync::OnceCell;

use crate::client::OidcClient;
use crate::error::AuthError;
use crate::settings::OidcSettings;

/// Holds validated settings; runs discovery on the first [`get`](Self::get), again on every
/// call until one succeeds, then keeps the client for good.
pub struct LazyOidcClient {
    settings: OidcSettings,
    client: OnceCell<OidcClient>,
}

impl LazyOidcClient {
    pub fn new(settings: OidcSettings) -> Self {
        Self {
            settings,
            client: OnceCell::new(),
        }
    }

    /// The discovered client, discovering now if no earlier call succeeded. Concurrent callers
    /// share one discovery.
    pub async fn get(&self) -> Result<&OidcClient, AuthError> {
        self.client
            .get_or_try_init(|| OidcClient::discover(self.settings.clone()))
            .await
    }

    /// The client if discovery already succeeded.
    pub fn get_ready(&self) -> Option<&OidcClient> {
        self.client.get()
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }
}
