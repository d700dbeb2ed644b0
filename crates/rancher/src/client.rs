//! The Rancher client: token check, clusters, projects, namespaces (v3) and Helm charts through
//! Apps & Marketplace (Steve v1).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::{truncate, RancherError};
use crate::http::{ApiToken, Http, Idempotency, RetryPolicy};

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
    pub retry: RetryPolicy,
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
            retry: RetryPolicy::default(),
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// `c-xxxxx:p-yyyyy`.
    pub id: String,
    pub name: String,
    pub cluster_id: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub project_id: Option<String>,
    pub state: String,
}

/// Where a chart goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub cluster_id: String,
    pub namespace: String,
}

/// The desired state of one Helm release.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub release: String,
    pub repo: String,
    pub chart: String,
    pub version: String,
    /// The full desired user values (a non-empty map replaces the previous ones).
    pub values: Value,
    /// Ask Helm to wait for the workloads (`wait:true`), so `deployed` means ready.
    pub wait: bool,
    /// Helm timeout.
    pub timeout: Duration,
}

/// A release as the App resource reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppStatus {
    pub release: String,
    pub namespace: String,
    /// `deployed`, `pending-install`, `pending-upgrade`, `failed`, …
    pub status: String,
    pub revision: u64,
    pub chart: String,
    pub chart_version: String,
    pub values: Value,
    pub description: String,
}

impl AppStatus {
    pub fn is_pending(&self) -> bool {
        self.status.starts_with("pending-") || self.status == "uninstalling"
    }

    fn from_json(v: &Value) -> Self {
        let spec = &v["spec"];
        AppStatus {
            release: str_at(v, &["metadata", "name"]),
            namespace: str_at(v, &["metadata", "namespace"]),
            status: str_at(spec, &["info", "status"]),
            revision: spec["version"].as_u64().unwrap_or(0),
            chart: str_at(spec, &["chart", "metadata", "name"]),
            chart_version: str_at(spec, &["chart", "metadata", "version"]),
            values: match &spec["values"] {
                Value::Null => json!({}),
                v => v.clone(),
            },
            description: str_at(spec, &["info", "description"]),
        }
    }
}

/// What [`RancherClient::deploy_chart`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartAction {
    /// Already deployed at the desired version with the same values: nothing sent.
    Unchanged,
    Installed,
    Upgraded,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartOutcome {
    pub action: ChartAction,
    pub revision: u64,
    pub chart_version: String,
}

/// What [`RancherClient::uninstall`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    Removed,
    NotInstalled,
}

/// The state of a Helm operation (contract §4, "Operation").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    Pending,
    Succeeded,
    Failed { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OperationInfo {
    namespace: String,
    name: String,
    release: String,
    state: OperationState,
    logs_link: Option<String>,
}

pub(crate) fn str_at(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default().to_owned()
}

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Rancher API client. Cheap to clone.
#[derive(Clone)]
pub struct RancherClient {
    http: std::sync::Arc<Http>,
    cfg: RancherConfig,
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

    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, RancherError> {
        self.get(path).await
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

    async fn get(&self, path: &str) -> Result<Value, RancherError> {
        self.http
            .send(Method::GET, path, None, Idempotency::Safe)
            .await?
            .json(path)
    }

    /// `GET` that maps 404 to `None`.
    async fn get_opt(&self, path: &str) -> Result<Option<Value>, RancherError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn steve_base(cluster_id: &str) -> String {
        format!("/k8s/clusters/{}/v1", enc(cluster_id))
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
                id: str_at(u, &["id"]),
                username: str_at(u, &["username"]),
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
        let v = self
            .get(&format!("/v3/clusters?name={}", enc(name_or_id)))
            .await?;
        let parse = |c: &Value| Cluster {
            id: str_at(c, &["id"]),
            name: str_at(c, &["name"]),
            state: str_at(c, &["state"]),
        };
        if let Some(c) = v["data"].as_array().and_then(|d| d.first()) {
            return Ok(parse(c));
        }
        match self
            .get_opt(&format!("/v3/clusters/{}", enc(name_or_id)))
            .await?
        {
            Some(c) => Ok(parse(&c)),
            None => Err(RancherError::ClusterNotFound(name_or_id.to_owned())),
        }
    }

    fn parse_project(p: &Value) -> Project {
        Project {
            id: str_at(p, &["id"]),
            name: str_at(p, &["name"]),
            cluster_id: str_at(p, &["clusterId"]),
            state: str_at(p, &["state"]),
        }
    }

    /// Finds the project by name in the cluster (names are not unique: the oldest match wins),
    /// creates it only when there is none, and waits until it is `active`.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, project = %name))]
    pub async fn ensure_project(
        &self,
        cluster_id: &str,
        name: &str,
        description: &str,
    ) -> Result<Project, RancherError> {
        let list = format!(
            "/v3/projects?clusterId={}&name={}",
            enc(cluster_id),
            enc(name)
        );
        let found = self.get(&list).await?;
        let mut existing: Vec<Value> = found["data"].as_array().cloned().unwrap_or_default();
        existing.sort_by_key(|p| str_at(p, &["created"]));
        let project = match existing.first() {
            Some(p) => Self::parse_project(p),
            None => {
                tracing::info!("creating project");
                let body = json!({"type": "project", "name": name, "clusterId": cluster_id, "description": description});
                let a = self
                    .http
                    .send(
                        Method::POST,
                        "/v3/projects",
                        Some(&body),
                        Idempotency::Unsafe,
                    )
                    .await?;
                Self::parse_project(&a.json("/v3/projects")?)
            }
        };
        if project.state == "active" {
            return Ok(project);
        }
        let path = format!("/v3/projects/{}", enc(&project.id));
        let deadline = Instant::now() + self.cfg.activation_timeout;
        loop {
            let p = Self::parse_project(&self.get(&path).await?);
            if p.state == "active" {
                return Ok(p);
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("project {} to become active (state {})", p.id, p.state),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    fn parse_namespace(v: &Value) -> Namespace {
        Namespace {
            name: str_at(v, &["name"]),
            project_id: v["projectId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            state: str_at(v, &["state"]),
        }
    }

    /// Ensures the namespace exists in the project (creating or moving it) and is `active`.
    /// A 403 right after creation (RBAC lag) is treated as pending.
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, namespace = %name))]
    pub async fn ensure_namespace(
        &self,
        cluster_id: &str,
        project_id: &str,
        name: &str,
    ) -> Result<Namespace, RancherError> {
        let path = format!("/v3/clusters/{}/namespaces/{}", enc(cluster_id), enc(name));
        let deadline = Instant::now() + self.cfg.activation_timeout;
        let mut ns = match self.get_opt(&path).await {
            Ok(Some(v)) => Some(Self::parse_namespace(&v)),
            Ok(None) => None,
            Err(e) if e.status() == Some(403) => None,
            Err(e) => return Err(e),
        };
        if ns.is_none() {
            tracing::info!("creating namespace");
            let body = json!({"type": "namespace", "name": name, "projectId": project_id});
            let create = format!("/v3/clusters/{}/namespaces", enc(cluster_id));
            match self
                .http
                .send(Method::POST, &create, Some(&body), Idempotency::Unsafe)
                .await
            {
                Ok(a) => ns = Some(Self::parse_namespace(&a.json(&create)?)),
                // Created concurrently (or by our own timed-out attempt): read it below.
                Err(e) if e.status() == Some(409) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            let current = match ns.take() {
                Some(n) => Some(n),
                None => match self.get_opt(&path).await {
                    Ok(v) => v.map(|v| Self::parse_namespace(&v)),
                    Err(e) if e.status() == Some(403) && Instant::now() < deadline => None,
                    Err(e) => return Err(e),
                },
            };
            if let Some(n) = current {
                if n.project_id.as_deref() != Some(project_id) {
                    tracing::info!(from = ?n.project_id, "moving namespace into the project");
                    let body = json!({"projectId": project_id});
                    self.http
                        .send(
                            Method::POST,
                            &format!("{path}?action=move"),
                            Some(&body),
                            Idempotency::Safe,
                        )
                        .await?;
                } else if n.state == "active" {
                    return Ok(n);
                }
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("namespace {name} to become active in project {project_id}"),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// Waits until the cluster repo has downloaded its index (`Downloaded`/`OCIDownloaded`).
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, repo = %repo))]
    pub async fn wait_repo_ready(&self, cluster_id: &str, repo: &str) -> Result<(), RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.clusterrepos/{}",
            Self::steve_base(cluster_id),
            enc(repo)
        );
        let deadline = Instant::now() + self.cfg.activation_timeout;
        loop {
            let v = self.get(&path).await?;
            let cond = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| matches!(c["type"].as_str(), Some("Downloaded" | "OCIDownloaded")));
            match cond.map(|c| (str_at(c, &["status"]), str_at(c, &["message"]))) {
                Some((s, _)) if s == "True" => return Ok(()),
                Some((s, message)) if s == "False" => {
                    return Err(RancherError::RepoNotReady {
                        repo: repo.into(),
                        message,
                    })
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::RepoNotReady {
                    repo: repo.into(),
                    message: format!(
                        "index not downloaded after {:?}",
                        self.cfg.activation_timeout
                    ),
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// Versions of a chart in a cluster repo, newest first (including versions the
    /// Rancher/Kubernetes filter would hide).
    pub async fn chart_versions(
        &self,
        cluster_id: &str,
        repo: &str,
        chart: &str,
    ) -> Result<Vec<String>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.clusterrepos/{}?link=index&skipFilter=true",
            Self::steve_base(cluster_id),
            enc(repo)
        );
        let v = self.get(&path).await?;
        Ok(v["entries"][chart]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["version"].as_str().map(str::to_owned))
            .collect())
    }

    /// The App of a release, or `None` when Helm has no release by that name.
    pub async fn get_app(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Option<AppStatus>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.apps/{}/{}",
            Self::steve_base(&target.cluster_id),
            enc(&target.namespace),
            enc(release)
        );
        Ok(self.get_opt(&path).await?.map(|v| AppStatus::from_json(&v)))
    }

    /// Every App in the namespace.
    pub async fn list_apps(&self, target: &Target) -> Result<Vec<AppStatus>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.apps/{}",
            Self::steve_base(&target.cluster_id),
            enc(&target.namespace)
        );
        let v = self.get(&path).await?;
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(AppStatus::from_json)
            .collect())
    }

    fn parse_operation(v: &Value) -> OperationInfo {
        let conds: Vec<&Value> = v["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let cond = |t: &str| {
            conds
                .iter()
                .find(|c| c["type"] == t)
                .map(|c| (str_at(c, &["status"]), str_at(c, &["message"])))
        };
        let state = match (cond("Stalled"), cond("Reconciling")) {
            (Some((s, msg)), _) if s == "True" => OperationState::Failed { message: msg },
            (_, Some((s, _))) if s == "False" => OperationState::Succeeded,
            _ => OperationState::Pending,
        };
        OperationInfo {
            namespace: str_at(v, &["metadata", "namespace"]),
            name: str_at(v, &["metadata", "name"]),
            release: str_at(v, &["status", "releaseName"]),
            state,
            logs_link: v["links"]["logs"].as_str().map(str::to_owned),
        }
    }

    /// An unfinished operation acting on `release`, if any.
    async fn in_flight_operation(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Option<OperationInfo>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.operations/{}",
            Self::steve_base(&target.cluster_id),
            enc(&target.namespace)
        );
        let v = self.get(&path).await?;
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Self::parse_operation)
            .find(|op| op.release == release && op.state == OperationState::Pending))
    }

    /// Polls an operation until it finishes. Failure carries Helm's text from the log link.
    async fn wait_operation(
        &self,
        target: &Target,
        name: &str,
        release: &str,
        action: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<(), RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.operations/{}/{}",
            Self::steve_base(&target.cluster_id),
            enc(&target.namespace),
            enc(name)
        );
        loop {
            // Garbage-collected (or pod gone): only the App can tell; the caller checks it.
            let Some(v) = self.get_opt(&path).await? else {
                return Ok(());
            };
            let op = Self::parse_operation(&v);
            match op.state.clone() {
                OperationState::Succeeded => return Ok(()),
                OperationState::Failed { message } => {
                    let logs = self.operation_logs(&op, &path).await;
                    let message = helm_error_text(&logs).unwrap_or(message);
                    return Err(RancherError::OperationFailed {
                        release: release.into(),
                        action: action.into(),
                        operation: format!("{}/{}", op.namespace, op.name),
                        message,
                    });
                }
                OperationState::Pending => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!(
                        "helm operation {name} ({action} {release}) to finish; its pod may be stuck Pending"
                    ),
                    waited: budget,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    async fn operation_logs(&self, op: &OperationInfo, self_path: &str) -> String {
        let path = match &op.logs_link {
            Some(link) => link
                .strip_prefix(&self.http.base)
                .unwrap_or(link)
                .to_owned(),
            None => format!("{self_path}?link=logs"),
        };
        match self
            .http
            .send(Method::GET, &path, None, Idempotency::Safe)
            .await
        {
            Ok(a) => a.text(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the operation's logs");
                String::new()
            }
        }
    }

    /// Makes the release match `spec`: nothing when it already does, otherwise install or
    /// upgrade through the cluster repo, wait for the operation, then for the App to be
    /// `deployed` at the expected version with a new revision.
    ///
    /// Safe to call again after any failure: it looks before it acts, follows an operation that
    /// is already running for the release instead of starting another, and reports a release
    /// stuck `pending-*` instead of piling actions on it.
    #[tracing::instrument(skip_all, fields(cluster_id = %target.cluster_id, namespace = %target.namespace, release = %spec.release, chart = %spec.chart, version = %spec.version))]
    pub async fn deploy_chart(
        &self,
        target: &Target,
        spec: &ChartSpec,
    ) -> Result<ChartOutcome, RancherError> {
        let budget = spec.timeout + self.cfg.operation_grace;
        let deadline = Instant::now() + budget;
        // Each uncertain POST (timeout) leads to one more look at the state; bounded.
        for _ in 0..=self.cfg.retry.max_attempts {
            let app = self.get_app(target, &spec.release).await?;
            if let Some(a) = &app {
                if a.status == "deployed"
                    && a.chart_version == spec.version
                    && a.values == spec.values
                {
                    tracing::info!(revision = a.revision, "release already as desired");
                    return Ok(ChartOutcome {
                        action: ChartAction::Unchanged,
                        revision: a.revision,
                        chart_version: a.chart_version.clone(),
                    });
                }
            }
            if let Some(op) = self.in_flight_operation(target, &spec.release).await? {
                tracing::info!(operation = %op.name, "following an operation already running for the release");
                self.wait_operation(
                    target,
                    &op.name,
                    &spec.release,
                    "install/upgrade",
                    deadline,
                    budget,
                )
                .await?;
                continue;
            }
            if let Some(a) = &app {
                if a.is_pending() {
                    return Err(RancherError::ReleaseStuck {
                        release: spec.release.clone(),
                        status: a.status.clone(),
                    });
                }
            }
            let previous = app.as_ref().map_or(0, |a| a.revision);
            let (action, chart_action) = match app {
                None => ("install", ChartAction::Installed),
                Some(_) => ("upgrade", ChartAction::Upgraded),
            };
            let timeout = berth_blueprint::format_go_duration(spec.timeout);
            let mut body = json!({
                "namespace": target.namespace,
                "wait": spec.wait,
                "timeout": timeout,
                "charts": [{
                    "chartName": spec.chart,
                    "version": spec.version,
                    "releaseName": spec.release,
                    "values": spec.values,
                    "annotations": {
                        "catalog.cattle.io/ui-source-repo-type": "cluster",
                        "catalog.cattle.io/ui-source-repo": spec.repo,
                    },
                }],
            });
            if action == "upgrade" {
                // Chart defaults + exactly the desired values: nothing sticky from earlier runs.
                body["resetValues"] = json!(true);
                body["historyMax"] = json!(5);
            }
            let path = format!(
                "{}/catalog.cattle.io.clusterrepos/{}?action={action}",
                Self::steve_base(&target.cluster_id),
                enc(&spec.repo)
            );
            tracing::info!(action, "starting helm action");
            let answer = match self
                .http
                .send(Method::POST, &path, Some(&body), Idempotency::Unsafe)
                .await
            {
                Ok(a) => a,
                Err(e @ (RancherError::Timeout { .. } | RancherError::Transport { .. })) => {
                    tracing::warn!(error = %e, "helm action outcome unknown; looking at the release again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let out = answer.json(&path)?;
            let op_name = str_at(&out, &["operationName"]);
            self.wait_operation(target, &op_name, &spec.release, action, deadline, budget)
                .await?;
            let app = self.confirm_app(target, spec, previous).await?;
            return Ok(ChartOutcome {
                action: chart_action,
                revision: app.revision,
                chart_version: app.chart_version,
            });
        }
        Err(RancherError::Deadline {
            what: format!(
                "release {} to settle after repeated uncertain attempts",
                spec.release
            ),
            waited: budget,
        })
    }

    /// After a successful operation: the App must show a new `deployed` revision at the version.
    async fn confirm_app(
        &self,
        target: &Target,
        spec: &ChartSpec,
        previous: u64,
    ) -> Result<AppStatus, RancherError> {
        let deadline = Instant::now() + self.cfg.confirm_timeout;
        loop {
            let app = self.get_app(target, &spec.release).await?;
            if let Some(a) = &app {
                if a.revision > previous {
                    if a.status == "deployed" && a.chart_version == spec.version {
                        return Ok(a.clone());
                    }
                    if a.status == "failed" {
                        return Err(RancherError::ReleaseFailed {
                            release: spec.release.clone(),
                            status: a.status.clone(),
                            description: a.description.clone(),
                        });
                    }
                    if a.status == "deployed" {
                        return Err(RancherError::ReleaseFailed {
                            release: spec.release.clone(),
                            status: a.status.clone(),
                            description: format!(
                                "deployed chart version {} instead of {}",
                                a.chart_version, spec.version
                            ),
                        });
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(match app {
                    Some(a) if a.is_pending() => RancherError::ReleaseStuck {
                        release: spec.release.clone(),
                        status: a.status,
                    },
                    _ => RancherError::Deadline {
                        what: format!(
                            "release {} to show a new deployed revision after its operation reported success \
                             (the operation pod may have vanished)",
                            spec.release
                        ),
                        waited: self.cfg.confirm_timeout,
                    },
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// Uninstalls a release and waits until its App is gone. `NotInstalled` when there is none.
    #[tracing::instrument(skip_all, fields(cluster_id = %target.cluster_id, namespace = %target.namespace, release = %release))]
    pub async fn uninstall(
        &self,
        target: &Target,
        release: &str,
        timeout: Duration,
    ) -> Result<UninstallOutcome, RancherError> {
        if self.get_app(target, release).await?.is_none() {
            return Ok(UninstallOutcome::NotInstalled);
        }
        let path = format!(
            "{}/catalog.cattle.io.apps/{}/{}?action=uninstall",
            Self::steve_base(&target.cluster_id),
            enc(&target.namespace),
            enc(release)
        );
        let body = json!({"timeout": berth_blueprint::format_go_duration(timeout)});
        let budget = timeout + self.cfg.operation_grace;
        let deadline = Instant::now() + budget;
        let answer = match self
            .http
            .send(Method::POST, &path, Some(&body), Idempotency::Unsafe)
            .await
        {
            Ok(a) => Some(a),
            Err(e) if e.is_not_found() => return Ok(UninstallOutcome::NotInstalled),
            Err(e @ RancherError::Timeout { .. }) => {
                tracing::warn!(error = %e, "uninstall outcome unknown; watching the release");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(a) = answer {
            let out = a.json(&path)?;
            let op = str_at(&out, &["operationName"]);
            self.wait_operation(target, &op, release, "uninstall", deadline, budget)
                .await?;
        }
        loop {
            match self.get_app(target, release).await? {
                None => return Ok(UninstallOutcome::Removed),
                Some(a) if a.status == "uninstalled" => return Ok(UninstallOutcome::Removed),
                Some(a) if Instant::now() >= deadline => {
                    return Err(RancherError::Deadline {
                        what: format!("release {release} to be uninstalled (now {})", a.status),
                        waited: budget,
                    })
                }
                Some(_) => tokio::time::sleep(self.cfg.poll_interval).await,
            }
        }
    }

    /// Deletes a project (through its `remove` link) and waits until it is gone.
    pub async fn delete_project(&self, project_id: &str) -> Result<(), RancherError> {
        let path = format!("/v3/projects/{}", enc(project_id));
        match self
            .http
            .send(Method::DELETE, &path, None, Idempotency::Safe)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + self.cfg.activation_timeout;
        while self.get_opt(&path).await?.is_some() {
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("project {project_id} to be removed"),
                    waited: self.cfg.activation_timeout,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
        Ok(())
    }
}

/// Picks Helm's error lines out of an operation log (`Error: …`), falling back to the tail.
fn helm_error_text(logs: &str) -> Option<String> {
    let lines: Vec<&str> = logs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("Error"))
        .collect();
    let text = if errors.is_empty() {
        lines[lines.len().saturating_sub(3)..].join("\n")
    } else {
        errors.join("\n")
    };
    Some(truncate(&text, 2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_error_lines_are_extracted() {
        let logs = "helm install --namespace=x influxdb /home/shell/helm/influxdb-4.3.2.tgz\n\
                    Error: INSTALLATION FAILED: execution error at (influxdb/templates/x.yaml:3:4): boom\n";
        assert_eq!(
            helm_error_text(logs).unwrap(),
            "Error: INSTALLATION FAILED: execution error at (influxdb/templates/x.yaml:3:4): boom"
        );
        assert_eq!(helm_error_text("a\nb\nc\nd").unwrap(), "b\nc\nd");
        assert_eq!(helm_error_text("  \n"), None);
    }

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
    fn encodes_path_segments() {
        assert_eq!(enc("c-m-1:p-2 x"), "c-m-1%3Ap-2%20x");
    }
}
