//! Kubernetes Secrets in a unit's namespace, written through Rancher's Kubernetes proxy
//! (`/k8s/clusters/<id>/api/v1/namespaces/<ns>/secrets`), so charts get only a Secret's name
//! and keys in their values and no secret value sits in an app record or a Helm release.
//!
//! Values stay in zeroizing types ([`SecretString`], [`Zeroizing`]) until they are serialised
//! into the request body, which is itself a buffer zeroed after sending; they are never logged
//! and never part of an error (Kubernetes' `Status` messages name the Secret, not its data).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::encode_component;

/// A Secret's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretType {
    /// `Opaque`: arbitrary keys.
    Opaque,
    /// `kubernetes.io/dockerconfigjson`: an image pull secret (one key, `.dockerconfigjson`).
    DockerConfigJson,
}

impl SecretType {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Opaque => "Opaque",
            SecretType::DockerConfigJson => "kubernetes.io/dockerconfigjson",
        }
    }
}

/// A Secret to write: its name, type, labels and data. `Debug` shows the keys, never a value.
#[derive(Clone)]
pub struct KubeSecret {
    pub name: String,
    pub kind: SecretType,
    pub labels: BTreeMap<String, String>,
    data: BTreeMap<String, SecretString>,
}

impl fmt::Debug for KubeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeSecret")
            .field("name", &self.name)
            .field("type", &self.kind.as_str())
            .field("labels", &self.labels)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KubeSecret {
    /// An `Opaque` Secret without data yet.
    pub fn opaque(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: SecretType::Opaque,
            labels: BTreeMap::new(),
            data: BTreeMap::new(),
        }
    }

    /// A `kubernetes.io/dockerconfigjson` pull secret for one registry, as `kubectl create
    /// secret docker-registry` writes it.
    pub fn docker_registry(
        name: impl Into<String>,
        server: &str,
        username: &str,
        password: &SecretString,
    ) -> Self {
        let auth =
            Zeroizing::new(BASE64.encode(
                Zeroizing::new(format!("{username}:{}", password.expose_secret())).as_bytes(),
            ));
        let config = Zeroizing::new(
            serde_json::json!({"auths": {server: {
                "username": username,
                "password": password.expose_secret(),
                "auth": auth.as_str(),
            }}})
            .to_string(),
        );
        Self {
            name: name.into(),
            kind: SecretType::DockerConfigJson,
            labels: BTreeMap::new(),
            data: BTreeMap::from([(
                ".dockerconfigjson".to_owned(),
                SecretString::from(config.as_str().to_owned()),
            )]),
        }
    }

    /// Adds (or replaces) a key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// The value of `key`, for the one place that hands it over.
    pub fn value(&self, key: &str) -> Option<&SecretString> {
        self.data.get(key)
    }

    /// Whether the Secret Kubernetes answered with already holds exactly this type, these
    /// labels (ours; others may add more) and this data.
    fn matches(&self, current: &Value) -> bool {
        if current["type"].as_str().unwrap_or("Opaque") != self.kind.as_str() {
            return false;
        }
        let labels = &current["metadata"]["labels"];
        if self
            .labels
            .iter()
            .any(|(k, v)| labels[k].as_str() != Some(v.as_str()))
        {
            return false;
        }
        let Some(data) = current["data"].as_object() else {
            return self.data.is_empty();
        };
        data.len() == self.data.len()
            && self.data.iter().all(|(k, v)| {
                let ours = Zeroizing::new(BASE64.encode(v.expose_secret().as_bytes()));
                data.get(k).and_then(Value::as_str) == Some(ours.as_str())
            })
    }

    /// The request body, serialised straight into a buffer that is zeroed when dropped.
    fn body(&self, namespace: &str, resource_version: Option<&str>) -> Zeroizing<Vec<u8>> {
        let size: usize = self
            .data
            .iter()
            .map(|(k, v)| k.len() + v.expose_secret().len() * 4 / 3 + 16)
            .sum::<usize>()
            + 512;
        let mut buf = Zeroizing::new(Vec::with_capacity(size * 2));
        let body = Body {
            secret: self,
            namespace,
            resource_version,
        };
        serde_json::to_writer(&mut *buf, &body).expect("a Secret always serialises");
        buf
    }
}

/// The JSON of a `v1/Secret`, with `data` base64-encoded on the fly into zeroizing strings.
struct Body<'a> {
    secret: &'a KubeSecret,
    namespace: &'a str,
    resource_version: Option<&'a str>,
}

struct Metadata<'a>(&'a Body<'a>);
struct Data<'a>(&'a KubeSecret);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("apiVersion", "v1")?;
        m.serialize_entry("kind", "Secret")?;
        m.serialize_entry("metadata", &Metadata(self))?;
        m.serialize_entry("type", self.secret.kind.as_str())?;
        m.serialize_entry("data", &Data(self.secret))?;
        m.end()
    }
}

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &b.secret.name)?;
        m.serialize_entry("namespace", b.namespace)?;
        if !b.secret.labels.is_empty() {
            m.serialize_entry("labels", &b.secret.labels)?;
        }
        if let Some(rv) = b.resource_version {
            m.serialize_entry("resourceVersion", rv)?;
        }
        m.end()
    }
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.data.len()))?;
        for (k, v) in &self.0.data {
            let encoded = Zeroizing::new(BASE64.encode(v.expose_secret().as_bytes()));
            m.serialize_entry(k, encoded.as_str())?;
        }
        m.end()
    }
}

/// What [`RancherClient::ensure_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOutcome {
    Created,
    Updated,
    /// The Secret already held exactly this type, labels and data: nothing was sent.
    Unchanged,
}

impl SecretOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretOutcome::Created => "created",
            SecretOutcome::Updated => "updated",
            SecretOutcome::Unchanged => "unchanged",
        }
    }
}

/// Attempts at the read-then-write cycle before a conflict is given up on (someone else keeps
/// writing the same Secret).
const CONFLICT_ATTEMPTS: u32 = 4;

impl RancherClient {
    fn secrets_path(cluster_id: &str, namespace: &str) -> String {
        format!(
            "/k8s/clusters/{}/api/v1/namespaces/{}/secrets",
            encode_component(cluster_id),
            encode_component(namespace)
        )
    }

    /// Makes the Secret in `namespace` hold exactly `secret`'s type, labels and data: reads it
    /// (`GET …/secrets/<name>`), creates it when missing (`POST …/secrets`), replaces it when it
    /// differs (`PUT …/secrets/<name>` with the `resourceVersion` read, so a concurrent write is
    /// a 409 and the cycle starts again), and sends nothing when it already matches. A type
    /// change (immutable in Kubernetes) deletes and re-creates it. Safe to repeat.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %namespace, secret = %secret.name))]
    pub async fn ensure_secret(
        &self,
        cluster_id: &str,
        namespace: &str,
        secret: &KubeSecret,
    ) -> Result<SecretOutcome, RancherError> {
        let collection = Self::secrets_path(cluster_id, namespace);
        let one = format!("{collection}/{}", encode_component(&secret.name));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match self
                .http
                .send(Method::GET, &one, None, Idempotency::Safe)
                .await
            {
                Ok(answer) => Some(answer.json(&one)?),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let result = match current {
                None => {
                    let body = secret.body(namespace, None);
                    self.http
                        .send_bytes(Method::POST, &collection, Some(&body), Idempotency::Safe)
                        .await
                        .map(|_| SecretOutcome::Created)
                }
                Some(mut current) => {
                    let same = secret.matches(&current);
                    let type_changed =
                        current["type"].as_str().unwrap_or("Opaque") != secret.kind.as_str();
                    let rv = current["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_owned);
                    scrub(&mut current);
                    if same {
                        return Ok(SecretOutcome::Unchanged);
                    }
                    if type_changed {
                        tracing::info!("secret type changed: re-creating it");
                        match self
                            .http
                            .send(Method::DELETE, &one, None, Idempotency::Safe)
                            .await
                        {
                            Ok(_) => {}
                            Err(e) if e.is_not_found() => {}
                            Err(e) => return Err(e),
                        }
                        continue;
                    }
                    let body = secret.body(namespace, rv.as_deref());
                    self.http
                        .send_bytes(Method::PUT, &one, Some(&body), Idempotency::Safe)
                        .await
                        .map(|_| SecretOutcome::Updated)
                }
            };
            match result {
                Ok(outcome) => {
                    tracing::info!(outcome = outcome.as_str(), "secret ensured");
                    return Ok(outcome);
                }
                // Created meanwhile (409 AlreadyExists), or changed since we read it (409
                // Conflict): read again.
                Err(e) if e.status() == Some(409) && attempt < CONFLICT_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `DELETE …/secrets/<name>`; `false` when there was none.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %namespace, secret = %name))]
    pub async fn delete_secret(
        &self,
        cluster_id: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, RancherError> {
        let one = format!(
            "{}/{}",
            Self::secrets_path(cluster_id, namespace),
            encode_component(name)
        );
        match self
            .http
            .send(Method::DELETE, &one, None, Idempotency::Safe)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Zeroes the data of a Secret read back from Kubernetes.
fn scrub(v: &mut Value) {
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            if let Value::String(s) = value {
                s.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_keys_never_values() {
        let s = KubeSecret::opaque("u-db")
            .with("password", "hunter2-very-secret")
            .with_label("app.kubernetes.io/managed-by", "berth");
        let d = format!("{s:?}");
        assert!(d.contains("password") && !d.contains("hunter2"), "{d}");
        let r = KubeSecret::docker_registry(
            "u-registry",
            "registry.example.com",
            "robot",
            &SecretString::from("pull-pass"),
        );
        assert!(!format!("{r:?}").contains("pull-pass"));
    }

    #[test]
    fn body_is_base64_and_matches_what_it_wrote() {
        let s = KubeSecret::opaque("u-s3").with("secretAccessKey", "a/b+c");
        let body: Value = serde_json::from_slice(&s.body("ns", Some("7"))).unwrap();
        assert_eq!(body["kind"], "Secret");
        assert_eq!(body["type"], "Opaque");
        assert_eq!(body["metadata"]["namespace"], "ns");
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(body["data"]["secretAccessKey"], BASE64.encode("a/b+c"));
        assert!(s.matches(&body));
        assert!(!KubeSecret::opaque("u-s3")
            .with("secretAccessKey", "other")
            .matches(&body));

        let r = KubeSecret::docker_registry(
            "u-registry",
            "registry.example.com",
            "robot",
            &SecretString::from("pull-pass"),
        );
        let body: Value = serde_json::from_slice(&r.body("ns", None)).unwrap();
        assert_eq!(body["type"], "kubernetes.io/dockerconfigjson");
        let config = BASE64
            .decode(body["data"][".dockerconfigjson"].as_str().unwrap())
            .unwrap();
        let config: Value = serde_json::from_slice(&config).unwrap();
        let entry = &config["auths"]["registry.example.com"];
        assert_eq!(entry["password"], "pull-pass");
        assert_eq!(entry["auth"], BASE64.encode("robot:pull-pass"));
    }
}
