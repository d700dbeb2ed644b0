//! The HTTP client for every call to the provider, and how its failures read.

use std::time::Duration;

use openidconnect::HttpClientError;

use crate::error::AuthError;

/// The reqwest client for every call to the provider: no redirects (SSRF, as the openidconnect
/// docs advise), bounded time, rustls.
pub(super) fn http_client() -> Result<reqwest::Client, AuthError> {
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

pub(super) fn transport_detail(e: &HttpClientError<reqwest::Error>) -> String {
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
