//! The Rancher client: configuration, the shared request helpers, and the calls that only read
//! the management API (ping, token check, clusters). The rest of the API surface is split by
//! resource: `projects` (projects, namespaces), `repos` (cluster repos), `apps` (Helm releases)
//! and `operations` (Helm operations), each adding methods to [`RancherClient`].

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::error::{truncate, RancherError};
use crate::http::{ApiToken, Http, HttpRetries, Idempotency};
use crate::quantity::{parse_cpu, parse_memory, QuantityError};
use crate::wire::{encode_component, string_at};

/// Our User-Agent. Rancher treats any agent containing "Mozilla" as a browser and then demands a
/// CSRF token on writes, so the client refuses such agents.
pub const DEFAULT_USER_AGENT: &str = concat!("berth-rancher/", env!("CARGO_PKG_VERSION"));

/// How to reach Rancher, and how patient to be.
#[derive(Debug, Clone)]
pub struct RancherConfig {
    /// Base URL, e.g. `https://rancher.example.com` (no trailing `/v3`).
    pub url: String,
    pub token: ApiToken,
    /// Timeout of each HTTP request.
    pub request_timeout: Duration,
    pub retry: HttpRetries,
    /// Interval between status polls (operations, apps, projects, namespaces).
    pub poll_interval: Duration,
    /// How long a project or namespace may take to become `active` (and how long a fresh
    /// namespace's post-creation 403 is tolerated).
    pub activation_timeout: Duration,
    /// Added to a chart's Helm timeout to form our own deadline for its operation (operation
    /// pods can sit `Pending` forever).
    pub operation_grace: Duration,
    /// After an operation reports success, how long the App may take to show the new revision.
    pub confirm_timeout: Duration,
    pub user_agent: String,
}

impl RancherConfig {
    pub fn new(url: impl Into<String>, token: ApiToken) -> Self {
        Self {
            url: url.into(),
            token,
            request_timeout: Duration::from_secs(30),
            retry: HttpRetries::default(),
            poll_interval: Duration::from_secs(2),
            activation_timeout: Duration::from_secs(120),
            operation_grace: Duration::from_secs(120),
            confirm_timeout: Duration::from_secs(60),
            user_agent: DEFAULT_USER_AGENT.into(),
        }
    }
}

/// The user behind the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub state: String,
    /// What the cluster can give to workloads; `None` when Rancher reports no usable
    /// `allocatable` ([`RancherClient::cluster_capacity`] says why).
    pub allocatable: Option<ClusterCapacity>,
}

/// A cluster's `allocatable` CPU and memory: its nodes' capacity minus what they reserve for
/// the system, i.e. the most that namespaces' quotas can add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterCapacity {
    /// CPU in millicores (1000 = one core).
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl ClusterCapacity {
    /// Reads `allocatable.cpu` and `allocatable.memory` of a v3 cluster object.
    fn from_cluster(c: &Value) -> Result<Self, RancherError> {
        let field = |name: &str, parse: fn(&str) -> Result<u64, QuantityError>| {
            let unusable = |reason: String| RancherError::CapacityUnavailable {
                cluster: cluster_label(c),
                field: format!("allocatable.{name}"),
                reason,
            };
            let raw = c["allocatable"][name]
                .as_str()
                .ok_or_else(|| unusable("Rancher reports none".into()))?;
            parse(raw).map_err(|e| unusable(e.to_string()))
        };
        Ok(Self {
            cpu_millis: field("cpu", parse_cpu)?,
            memory_bytes: field("memory", parse_memory)?,
        })
    }
}

/// `name (id)` for messages, or whichever of the two is known.
fn cluster_label(c: &Value) -> String {
    match (string_at(c, &["name"]), string_at(c, &["id"])) {
        (name, id) if name.is_empty() => id,
        (name, id) if id.is_empty() || id == name => name,
        (name, id) => format!("{name} ({id})"),
    }
}

/// A Rancher API client. Cheap to clone.
#[derive(Clone)]
pub struct RancherClient {
    pub(crate) http: std::sync::Arc<Http>,
    pub(crate) cfg: RancherConfig,
}

impl std::fmt::Debug for RancherClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RancherClient")
            .field("url", &self.cfg.url)
            .finish_non_exhaustive()
    }
}

impl RancherClient {
    pub fn new(cfg: RancherConfig) -> Result<Self, RancherError> {
        let url = cfg.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RancherError::Config(format!(
                "URL {url:?} must start with http:// or https://"
            )));
        }
        if cfg.user_agent.contains("Mozilla") {
            return Err(RancherError::Config(
                "the User-Agent must not contain \"Mozilla\" (Rancher would demand a CSRF token)"
                    .into(),
            ));
        }
        if cfg.token.expose_secret().trim().is_empty() {
            return Err(RancherError::Config("the API token is empty".into()));
        }
        if cfg.retry.max_attempts == 0 {
            return Err(RancherError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.request_timeout)
            .build()
            .map_err(|e| RancherError::Config(format!("cannot build the HTTP client: {e}")))?;
        let http = Http {
            client,
            base: url,
            token: cfg.token.clone(),
            request_timeout: cfg.request_timeout,
            retry: cfg.retry.clone(),
        };
        Ok(Self {
            http: std::sync::Arc::new(http),
            cfg,
        })
    }

    pub fn config(&self) -> &RancherConfig {
        &self.cfg
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.http.base
    }

    pub(crate) async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<(), RancherError> {
        self.http
            .send(method, path, body, idempotency)
            .await
            .map(|_| ())
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, RancherError> {
        self.http
            .send(Method::GET, path, None, Idempotency::Safe)
            .await?
            .json(path)
    }

    /// `GET` that maps 404 to `None`.
    pub(crate) async fn get_opt(&self, path: &str) -> Result<Option<Value>, RancherError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn steve_base(cluster_id: &str) -> String {
        format!("/k8s/clusters/{}/v1", encode_component(cluster_id))
    }

    /// `GET /ping` (no auth): is the server up?
    pub async fn ping(&self) -> Result<(), RancherError> {
        let a = self
            .http
            .send(Method::GET, "/ping", None, Idempotency::Safe)
            .await?;
        if a.text().trim() == "pong" {
            Ok(())
        } else {
            Err(RancherError::Decode {
                path: "/ping".into(),
                message: format!("expected pong, got {:?}", truncate(&a.text(), 80)),
            })
        }
    }

    /// `GET /v3/users?me=true`: the token works, and whose it is.
    #[tracing::instrument(skip_all)]
    pub async fn check_token(&self) -> Result<User, RancherError> {
        let path = "/v3/users?me=true";
        let v = self.get(path).await?;
        let data = v["data"].as_array().cloned().unwrap_or_default();
        match data.as_slice() {
            [u] => Ok(User {
                id: string_at(u, &["id"]),
                username: string_at(u, &["username"]),
            }),
            _ => Err(RancherError::Decode {
                path: path.into(),
                message: format!("expected exactly the caller, got {} users", data.len()),
            }),
        }
    }

    /// Finds a cluster by name (`GET /v3/clusters?name=`), or by id when no name matches.
    #[tracing::instrument(skip_all, fields(cluster = %name_or_id))]
    pub async fn find_cluster(&self, name_or_id: &str) -> Result<Cluster, RancherError> {
        let c = self.cluster_object(name_or_id).await?;
        Ok(Cluster {
            id: string_at(&c, &["id"]),
            name: string_at(&c, &["name"]),
            state: string_at(&c, &["state"]),
            allocatable: ClusterCapacity::from_cluster(&c).ok(),
        })
    }

    /// The cluster's allocatable CPU and memory, for comparing a plan's quotas with what the
    /// cluster has. Only reads. A cluster that reports no `allocatable.cpu`/`.memory` (as one
    /// still registering does), or one that is not a quantity, is
    /// [`RancherError::CapacityUnavailable`] naming the cluster and the field.
    #[tracing::instrument(skip_all, fields(cluster = %cluster_name_or_id))]
    pub async fn cluster_capacity(
        &self,
        cluster_name_or_id: &str,
    ) -> Result<ClusterCapacity, RancherError> {
        ClusterCapacity::from_cluster(&self.cluster_object(cluster_name_or_id).await?)
    }

    /// The v3 cluster object, looked up by name first and then by id.
    async fn cluster_object(&self, name_or_id: &str) -> Result<Value, RancherError> {
        let mut v = self
            .get(&format!(
                "/v3/clusters?name={}",
                encode_component(name_or_id)
            ))
            .await?;
        if let Some(c) = v["data"].as_array_mut().filter(|d| !d.is_empty()) {
            return Ok(c.swap_remove(0));
        }
        self.get_opt(&format!("/v3/clusters/{}", encode_component(name_or_id)))
            .await?
            .ok_or_else(|| RancherError::ClusterNotFound(name_or_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiToken;

    #[test]
    fn rejects_browser_user_agents_and_bad_urls() {
        let mut cfg = RancherConfig::new("http://127.0.0.1:1", ApiToken::new("t"));
        cfg.user_agent = "Mozilla/5.0".into();
        assert!(matches!(
            RancherClient::new(cfg),
            Err(RancherError::Config(_))
        ));
        let cfg = RancherConfig::new("ftp://x", ApiToken::new("t"));
        assert!(RancherClient::new(cfg).is_err());
        let cfg = RancherConfig::new("http://x", ApiToken::new("t"));
        assert!(!format!("{:?}", cfg).contains("\"t\""));
    }

    #[test]
    fn reads_allocatable_and_names_the_unusable_field() {
        let c = serde_json::json!({"id": "c-m-1", "name": "prod",
            "capacity": {"cpu": "64", "memory": "256Gi"},
            "allocatable": {"cpu": "63500m", "memory": "250Gi", "pods": "110"}});
        assert_eq!(
            ClusterCapacity::from_cluster(&c).unwrap(),
            ClusterCapacity {
                cpu_millis: 63_500,
                memory_bytes: 250 << 30
            }
        );

        let missing =
            serde_json::json!({"id": "c-m-1", "name": "prod", "allocatable": {"cpu": "8"}});
        match ClusterCapacity::from_cluster(&missing).unwrap_err() {
            RancherError::CapacityUnavailable {
                cluster,
                field,
                reason,
            } => {
                assert_eq!(cluster, "prod (c-m-1)");
                assert_eq!(field, "allocatable.memory");
                assert_eq!(reason, "Rancher reports none");
            }
            other => panic!("{other:?}"),
        }
        let none = serde_json::json!({"id": "local", "name": "local"});
        let err = ClusterCapacity::from_cluster(&none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster local reports no usable allocatable.cpu: Rancher reports none"
        );
        let bad = serde_json::json!({"id": "c-1", "allocatable": {"cpu": "lots", "memory": "1Gi"}});
        let err = ClusterCapacity::from_cluster(&bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cluster c-1 reports no usable allocatable.cpu: \"lots\""),
            "{err}"
        );
        assert!(!err.is_transient());
    }
}
