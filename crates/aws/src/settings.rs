//! Settings of the AWS stage and the SDK configuration built from them.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use serde::Deserialize;

use crate::error::AwsError;
use crate::unit::TagScheme;

/// Where and how Berth talks to AWS. Everything is optional: the standard SDK sources
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`, credentials chain) fill the gaps, so the
/// same code reaches the local emulator or real AWS by configuration alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Overrides `AWS_REGION` / the profile's region.
    pub region: Option<String>,
    /// Overrides `AWS_ENDPOINT_URL` (e.g. `http://127.0.0.1:5055` for the emulator).
    pub endpoint_url: Option<String>,
    /// How this company tags its units.
    #[serde(default)]
    pub tag_scheme: TagScheme,
}

impl AwsSettings {
    /// Every problem at once, for the start-up error.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Some(region) = &self.region {
            let ok = !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                problems.push(format!("aws.region {region:?} is not a region name"));
            }
        }
        if let Some(url) = &self.endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "aws.endpoint_url {url:?} must start with http:// or https://"
                ));
            }
        }
        if let Err(err) = self.tag_scheme.validate() {
            problems.push(err.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Loads the SDK configuration: standard sources, explicit overrides, a ring-only rustls
/// HTTPS client (the lean build has no default client) and the standard retry mode, which
/// retries throttling and 5xx with backoff.
pub async fn load_sdk_config(settings: &AwsSettings) -> Result<SdkConfig, AwsError> {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(5));
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(AwsError::Config(
            "no AWS region: set AWS_REGION or aws.region".into(),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_lists_every_problem() {
        let settings = AwsSettings {
            region: Some("EU Central".into()),
            endpoint_url: Some("localhost:5055".into()),
            tag_scheme: TagScheme {
                key: "aws:x".into(),
                value: "{unit}".into(),
            },
        };
        assert_eq!(settings.validate().unwrap_err().len(), 3);
        assert!(AwsSettings::default().validate().is_ok());
    }
}
