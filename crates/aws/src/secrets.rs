//! Reading the unit's secrets back, into types that never print their values.

use std::fmt;

use aws_sdk_secretsmanager as sm;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::{ApiError, AwsError, Result};

/// A secret value: `Debug` and `Display` print `[redacted]`; the memory is zeroed on drop.
/// Only [`SecretValue::expose`] reveals it, for the one place that must (rendering values).
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// Takes ownership of `value` without copying it, so no unzeroed copy is left behind.
    pub fn from_string(value: String) -> Self {
        Self(SecretString::from(value))
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
        // Moved, not copied: the SDK's own copy is the one Berth cannot wipe.
        let mut out = out;
        match out.secret_string.take() {
            Some(value) => Ok(SecretValue::from_string(value)),
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

/// The name of the company's registry password secret, the one place the units' stacks read
/// the password from (template `business-unit.yaml`, `RegistrySecret`). Three segments, so it
/// cannot be a unit's secret (`berth/<company>/<unit>/…`), and it carries no `berth:unit` tag,
/// so no unit's decommission lists it.
pub fn registry_password_secret_name(company_slug: &str) -> String {
    format!("berth/{company_slug}/registry-password")
}

/// The JSON document of the company's registry password secret: the password, and the
/// password JSON-string-escaped (`password_json`, without quotes) for the template, which
/// embeds it in the unit secret's JSON document through a dynamic reference.
fn registry_password_document(password: &SecretString) -> Result<Zeroizing<String>> {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        password: &'a str,
        password_json: &'a str,
    }
    let password = password.expose_secret();
    if password.is_empty() {
        return Err(AwsError::InvalidInput("registry password is empty".into()));
    }
    let quoted = Zeroizing::new(
        serde_json::to_string(password)
            .map_err(|_| AwsError::InvalidInput("registry password cannot be encoded".into()))?,
    );
    let document = serde_json::to_string(&Document {
        password,
        password_json: &quoted[1..quoted.len() - 1],
    })
    .map_err(|_| AwsError::InvalidInput("registry password cannot be encoded".into()))?;
    Ok(Zeroizing::new(document))
}

/// The company's registry password secret after [`SecretsReader::store_registry_password`]:
/// names and ids only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecretVersion {
    pub name: String,
    pub arn: String,
    /// The version holding the password now, which the unit stacks' reference is pinned to.
    pub version_id: String,
    /// Whether this call wrote it (created the secret or put a new version).
    pub written: bool,
}

impl SecretsReader {
    /// Makes the company's registry password secret hold `password` and returns the version
    /// that does. Writes only when the stored value differs (created on first use, then a new
    /// version per rotation), so the version id, and with it the stacks' parameters, change
    /// exactly when the password does. `kms_key_id` is used when creating the secret.
    #[tracing::instrument(skip_all, fields(company = %company_slug))]
    pub async fn store_registry_password(
        &self,
        company_slug: &str,
        password: &SecretString,
        kms_key_id: Option<&str>,
    ) -> Result<StoredSecretVersion> {
        let name = registry_password_secret_name(company_slug);
        let document = registry_password_document(password)?;
        let missing = |err: &ApiError| err.code.as_deref() == Some("ResourceNotFoundException");
        // Twice at most: a concurrent worker may create the secret between our read and create.
        for _ in 0..2 {
            match self.client.get_secret_value().secret_id(&name).send().await {
                Ok(mut out) => {
                    let current = Zeroizing::new(out.secret_string.take().unwrap_or_default());
                    let arn = out.arn.take().unwrap_or_else(|| name.clone());
                    if *current == *document {
                        let version_id = out.version_id.take().ok_or_else(|| {
                            AwsError::api(
                                format!("secret {name}"),
                                ApiError::new("GetSecretValue", None, "no VersionId returned"),
                            )
                        })?;
                        return Ok(StoredSecretVersion {
                            name,
                            arn,
                            version_id,
                            written: false,
                        });
                    }
                    let put = self
                        .client
                        .put_secret_value()
                        .secret_id(&arn)
                        .secret_string(document.as_str())
                        .send()
                        .await
                        .map_err(|e| {
                            AwsError::api(
                                format!("secret {name}"),
                                ApiError::from_sdk("PutSecretValue", e),
                            )
                        })?;
                    let version_id = put.version_id().unwrap_or_default().to_owned();
                    tracing::info!(secret = %name, %version_id, "registry password stored (new version)");
                    return Ok(StoredSecretVersion {
                        name,
                        arn,
                        version_id,
                        written: true,
                    });
                }
                Err(err) => {
                    let err = ApiError::from_sdk("GetSecretValue", err);
                    if !missing(&err) {
                        return Err(AwsError::api(format!("secret {name}"), err));
                    }
                }
            }
            let created = self
                .client
                .create_secret()
                .name(&name)
                .description(
                    "Registry pull password of the company's units, kept by Berth from its \
                     settings; the units' stacks read it by dynamic reference.",
                )
                .secret_string(document.as_str())
                .set_kms_key_id(kms_key_id.map(str::to_owned))
                .tags(
                    sm::types::Tag::builder()
                        .key("berth:company")
                        .value(company_slug)
                        .build(),
                )
                .tags(
                    sm::types::Tag::builder()
                        .key("berth:managed-by")
                        .value("berth")
                        .build(),
                )
                .send()
                .await;
            match created {
                Ok(out) => {
                    let version_id = out.version_id().unwrap_or_default().to_owned();
                    let arn = out.arn().unwrap_or(&name).to_owned();
                    tracing::info!(secret = %name, %version_id, "registry password stored (secret created)");
                    return Ok(StoredSecretVersion {
                        name,
                        arn,
                        version_id,
                        written: true,
                    });
                }
                Err(err) => {
                    let err = ApiError::from_sdk("CreateSecret", err);
                    if err.code.as_deref() != Some("ResourceExistsException") {
                        return Err(AwsError::api(format!("secret {name}"), err));
                    }
                }
            }
        }
        Err(AwsError::api(
            format!("secret {name}"),
            ApiError::new(
                "CreateSecret",
                Some("ResourceExistsException"),
                "created and gone again twice while storing the registry password",
            ),
        ))
    }
}

/// A secret as `ListSecrets` (with `IncludePlannedDeletion`) reports it: names and dates
/// only, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSecret {
    pub name: String,
    pub arn: String,
    /// Secrets Manager's `DeletedDate` (RFC 3339) when the secret is scheduled for deletion.
    pub deleted_date: Option<String>,
    pub tags: Vec<crate::unit::Tag>,
}

fn rfc3339(date: &aws_sdk_secretsmanager::primitives::DateTime) -> String {
    date.fmt(aws_sdk_secretsmanager::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{}s since 1970", date.secs()))
}

impl SecretsReader {
    /// Every secret carrying all of `tags` (exact key and value), including those scheduled
    /// for deletion. The service filters on the first tag (a prefix match), the rest is
    /// checked here.
    pub async fn list_tagged(&self, tags: &[crate::unit::Tag]) -> Result<Vec<ListedSecret>> {
        let Some(first) = tags.first() else {
            return Err(AwsError::InvalidInput(
                "listing secrets needs at least one tag".into(),
            ));
        };
        let filter = |key: sm::types::FilterNameStringType, value: &str| {
            sm::types::Filter::builder().key(key).values(value).build()
        };
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_secrets()
                .include_planned_deletion(true)
                .filters(filter(sm::types::FilterNameStringType::TagKey, &first.key))
                .filters(filter(
                    sm::types::FilterNameStringType::TagValue,
                    &first.value,
                ))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    AwsError::api(
                        format!("secrets tagged {first}"),
                        ApiError::from_sdk("ListSecrets", e),
                    )
                })?;
            for entry in out.secret_list() {
                let entry_tags: Vec<crate::unit::Tag> = entry
                    .tags()
                    .iter()
                    .map(|t| crate::unit::Tag {
                        key: t.key().unwrap_or_default().to_owned(),
                        value: t.value().unwrap_or_default().to_owned(),
                    })
                    .collect();
                if !tags.iter().all(|t| entry_tags.contains(t)) {
                    continue;
                }
                found.push(ListedSecret {
                    name: entry.name().unwrap_or_default().to_owned(),
                    arn: entry.arn().unwrap_or_default().to_owned(),
                    deleted_date: entry.deleted_date().map(rfc3339),
                    tags: entry_tags,
                });
            }
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                found.sort_by(|a, b| a.name.cmp(&b.name));
                return Ok(found);
            }
        }
    }

    /// Schedules the secret `arn` for deletion after `recovery_window_days`; returns
    /// Secrets Manager's deletion date (RFC 3339), or `None` when the secret was already
    /// scheduled (by a concurrent or earlier call) and so is left as it is.
    pub async fn schedule_deletion(
        &self,
        arn: &str,
        recovery_window_days: u16,
    ) -> Result<Option<String>> {
        match self
            .client
            .delete_secret()
            .secret_id(arn)
            .recovery_window_in_days(i64::from(recovery_window_days))
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.deletion_date()
                    .map(rfc3339)
                    .unwrap_or_else(|| "unknown (not reported)".into()),
            )),
            Err(err) => {
                let err = ApiError::from_sdk("DeleteSecret", err);
                if err.code.as_deref() == Some("InvalidRequestException")
                    && (err.message.contains("marked deleted")
                        || err.message.contains("marked for deletion"))
                {
                    Ok(None)
                } else {
                    Err(AwsError::api(format!("secret {arn}"), err))
                }
            }
        }
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
    fn the_registry_password_document_carries_the_escaped_form_for_the_template() {
        let document =
            registry_password_document(&SecretString::from("a\"b\\c".to_owned())).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(parsed["password"], "a\"b\\c");
        assert_eq!(parsed["password_json"], "a\\\"b\\\\c");
        // What the template builds from it is the unit secret's JSON with the password intact.
        let unit = format!(
            r#"{{"server":"s","username":"u","password":"{}"}}"#,
            parsed["password_json"].as_str().unwrap()
        );
        let creds: RegistryCredentials = serde_json::from_str(&unit).unwrap();
        assert_eq!(creds.password.expose(), "a\"b\\c");
        assert!(matches!(
            registry_password_document(&SecretString::from(String::new())),
            Err(AwsError::InvalidInput(_))
        ));
        assert_eq!(
            registry_password_secret_name("seaview"),
            "berth/seaview/registry-password"
        );
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
