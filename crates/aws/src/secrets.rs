//! Reading the unit's secrets back, into types that never print their values.

use std::fmt;

use aws_sdk_secretsmanager as sm;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, AwsError, Result};

/// A secret value: `Debug` and `Display` print `[redacted]`; the memory is zeroed on drop.
/// Only [`SecretValue::expose`] reveals it, for the one place that must (rendering values).
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretValue::new)
    }
}

/// Registry pull credentials (secret `berth/<company>/<unit>/registry`).
#[derive(Debug, Clone, Deserialize)]
pub struct RegistryCredentials {
    pub server: String,
    pub username: String,
    pub password: SecretValue,
}

/// The OAuth client of the unit's applications (secret `…/oauth-client`).
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: SecretValue,
}

/// Database user and its generated password (secret `…/database`).
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseCredentials {
    pub username: String,
    pub password: SecretValue,
}

/// The S3 access key of the unit's workloads (secret `…/s3`).
#[derive(Debug, Clone, Deserialize)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretValue,
    pub bucket: String,
    pub prefix: String,
}

/// Everything the next stage (Helm values) needs from Secrets Manager.
#[derive(Debug, Clone)]
pub struct UnitSecrets {
    pub registry: RegistryCredentials,
    pub oauth: OAuthClient,
    pub database: DatabaseCredentials,
    pub s3: S3Credentials,
}

impl UnitSecrets {
    /// Every secret value, e.g. for a redaction filter over rendered output.
    pub fn values(&self) -> [&SecretValue; 4] {
        [
            &self.registry.password,
            &self.oauth.client_secret,
            &self.database.password,
            &self.s3.secret_access_key,
        ]
    }
}

/// Reads secrets by ARN through the Secrets Manager SDK client.
#[derive(Debug, Clone)]
pub struct SecretsReader {
    client: sm::Client,
}

/// Describes a JSON error by kind and position only: serde_json messages can quote values.
fn describe_json_error(err: &serde_json::Error) -> String {
    let kind = match err.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Data => {
            // "missing field `x`" names a field, never a value; other data errors may quote one.
            let text = err.to_string();
            if let Some(field) = text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                return format!("missing field `{field}`");
            }
            "a field has the wrong type"
        }
    };
    format!("{kind} (line {}, column {})", err.line(), err.column())
}

impl SecretsReader {
    pub fn new(client: sm::Client) -> Self {
        Self { client }
    }

    /// The current value of the secret `arn`.
    #[tracing::instrument(skip_all, fields(secret = %arn))]
    pub async fn read(&self, arn: &str) -> Result<SecretValue> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| {
                AwsError::api(
                    format!("secret {arn}"),
                    ApiError::from_sdk("GetSecretValue", e),
                )
            })?;
        match out.secret_string() {
            Some(value) => Ok(SecretValue::new(value)),
            None => Err(AwsError::SecretFormat {
                arn: arn.into(),
                detail: "no string value (binary secrets are not used by Berth)".into(),
            }),
        }
    }

    /// The secret `arn` parsed as the JSON document `T`.
    pub async fn read_json<T: DeserializeOwned>(&self, arn: &str) -> Result<T> {
        let value = self.read(arn).await?;
        serde_json::from_str(value.expose()).map_err(|e| AwsError::SecretFormat {
            arn: arn.into(),
            detail: describe_json_error(&e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_print() {
        let creds: DatabaseCredentials =
            serde_json::from_str(r#"{"username":"trucking","password":"s3cr3t-V4lue"}"#).unwrap();
        let shown = format!("{creds:?} {} {:?}", creds.password, creds.password);
        assert!(!shown.contains("s3cr3t-V4lue"), "{shown}");
        assert_eq!(creds.password.expose(), "s3cr3t-V4lue");
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let err = serde_json::from_str::<DatabaseCredentials>(r#"{"username":"u","password":42}"#)
            .unwrap_err();
        assert!(!describe_json_error(&err).contains("42"));
        let err =
            serde_json::from_str::<DatabaseCredentials>(r#"{"username":"s3cr3t"}"#).unwrap_err();
        let text = describe_json_error(&err);
        assert!(
            text.contains("missing field `password`") && !text.contains("s3cr3t"),
            "{text}"
        );
    }
}
