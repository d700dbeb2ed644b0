//! The simulated Rancher state: clusters, projects, namespaces, repos, Helm releases and
//! operations. Time-driven transitions are computed from timestamps on every request
//! ([`World::advance`]), so the state always reads "as of now" without background tasks.
//!
//! This is the model only: it knows nothing of HTTP. The `http` module reads and changes it and
//! renders it as Rancher's JSON.

mod catalog;
mod helm;
mod legacy;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::config::{ClusterResources, Faults, SimConfig, Timings};

pub use catalog::{insight_repo, ChartVersion, Repo};
pub use helm::{
    Action, ChartRequest, HelmRecord, Operation, Phase, Release, ReleaseStatus, Revision,
    RevisionInfo,
};
pub use legacy::{LegacyApp, LegacyHelmRevision, LegacyRevision};

/// State shared by the HTTP handlers and the test-side handle.
pub struct Shared {
    world: Mutex<World>,
    admin_token: String,
}

impl Shared {
    pub fn new(config: &SimConfig) -> Arc<Self> {
        Arc::new(Self {
            world: Mutex::new(World::new(config)),
            admin_token: config.token.clone(),
        })
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock would be a simulator bug; keep serving regardless.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The admin API key configured at start.
    pub(crate) fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub key: String,
    pub expires_at: Option<Instant>,
    /// A key scoped to one cluster gets 401 on any other.
    pub cluster: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    /// `capacity`, `allocatable` and `requested` as the v3 cluster object reports them.
    pub resources: ClusterResources,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub cluster_id: String,
    pub name: String,
    pub description: String,
    pub created: Instant,
    pub created_wall: SystemTime,
    pub removing_since: Option<Instant>,
    pub resource_quota: Option<Value>,
    pub namespace_default_quota: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub project_id: Option<String>,
    pub created: Instant,
    pub created_wall: SystemTime,
    /// Deleted (Kubernetes `Terminating`): reads `removing` until it is gone, then 404.
    pub removing_since: Option<Instant>,
}

/// A Kubernetes Secret as a client sent it (`data` base64, as stored by Kubernetes).
#[derive(Debug, Clone)]
pub struct KubeSecret {
    /// `Opaque`, `kubernetes.io/dockerconfigjson`, …
    pub kind: String,
    pub labels: serde_json::Map<String, Value>,
    /// key → base64 value.
    pub data: serde_json::Map<String, Value>,
    pub resource_version: u64,
    pub created_wall: SystemTime,
}

pub struct World {
    pub config_timings: Timings,
    pub faults: Faults,
    pub tokens: Vec<Token>,
    pub clusters: Vec<Cluster>,
    pub projects: Vec<Project>,
    /// cluster id → namespace name → namespace
    pub namespaces: BTreeMap<String, BTreeMap<String, Namespace>>,
    /// cluster id → repo name → repo
    pub repos: BTreeMap<String, BTreeMap<String, Repo>>,
    /// (cluster, namespace, release) → release
    pub releases: BTreeMap<(String, String, String), Release>,
    /// (cluster, namespace, name) → operation
    pub operations: BTreeMap<(String, String, String), Operation>,
    pub counters: BTreeMap<String, u64>,
    pub history: Vec<HelmRecord>,
    pub legacy_enabled: bool,
    /// (project id, app name) → legacy v3 app
    pub legacy_apps: BTreeMap<(String, String), LegacyApp>,
    /// (cluster, namespace, name) → Secret written through the Kubernetes proxy.
    pub k8s_secrets: BTreeMap<(String, String, String), KubeSecret>,
    next_id: u64,
    next_resource_version: u64,
}

pub const ADMIN_USER: &str = "user-admin1";

impl World {
    pub fn new(config: &SimConfig) -> Self {
        let mut world = World {
            config_timings: config.timings.clone(),
            faults: Faults::default(),
            tokens: vec![Token {
                key: config.token.clone(),
                expires_at: None,
                cluster: None,
            }],
            clusters: vec![Cluster {
                id: "local".into(),
                name: "local".into(),
                resources: config.cluster_resources.clone(),
            }],
            projects: Vec::new(),
            namespaces: BTreeMap::new(),
            repos: BTreeMap::new(),
            releases: BTreeMap::new(),
            operations: BTreeMap::new(),
            counters: BTreeMap::new(),
            history: Vec::new(),
            legacy_enabled: config.legacy_apps,
            legacy_apps: BTreeMap::new(),
            k8s_secrets: BTreeMap::new(),
            next_id: 0,
            next_resource_version: 1000,
        };
        for (name, id) in &config.clusters {
            if !world.clusters.iter().any(|c| &c.id == id) {
                world.clusters.push(Cluster {
                    id: id.clone(),
                    name: name.clone(),
                    resources: config.cluster_resources.clone(),
                });
            }
        }
        let now = Instant::now();
        for c in world.clusters.clone() {
            let ns = world.namespaces.entry(c.id.clone()).or_default();
            for system in ["default", "kube-system", "cattle-system"] {
                ns.insert(
                    system.into(),
                    Namespace {
                        name: system.into(),
                        project_id: None,
                        created: now - Duration::from_secs(3600),
                        created_wall: SystemTime::now(),
                        removing_since: None,
                    },
                );
            }
            if config.seed_insight {
                world
                    .repos
                    .entry(c.id.clone())
                    .or_default()
                    .insert("stable".into(), insight_repo());
            }
        }
        world
    }

    /// A short, unique, lowercase suffix like Rancher's generated names.
    pub fn next_suffix(&mut self) -> String {
        self.next_id += 1;
        // Spread the counter over five base-36 characters so ids look generated.
        let mut n = self.next_id.wrapping_mul(2_654_435_761) % 60_466_176;
        let mut s = [b'0'; 5];
        for slot in s.iter_mut().rev() {
            let d = (n % 36) as u8;
            *slot = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            n /= 36;
        }
        String::from_utf8(s.to_vec()).expect("ascii")
    }

    /// The next `metadata.resourceVersion` (one counter for every object, as etcd's revision).
    pub fn next_resource_version(&mut self) -> u64 {
        self.next_resource_version += 1;
        self.next_resource_version
    }

    /// Everything clients sent that the simulator keeps about releases and apps: every Helm
    /// revision (chart, values, description, annotations), every operation's requests, command
    /// and log, every legacy app's answers and `valuesYaml` (current, apprevisions, Helm
    /// revisions) and the Helm action log. Secrets written through the Kubernetes proxy are not
    /// part of it. For tests that prove no secret value reaches a release.
    pub fn stored_app_data(&self) -> Value {
        let releases: Vec<Value> = self
            .releases
            .iter()
            .map(|((c, n, r), rel)| {
                serde_json::json!({"cluster": c, "namespace": n, "release": r,
                    "revisions": rel.revisions.iter().map(|rev| serde_json::json!({
                        "info": RevisionInfo::from(rev), "annotations": rev.annotations,
                    })).collect::<Vec<_>>()})
            })
            .collect();
        let operations: Vec<Value> = self
            .operations
            .values()
            .map(|op| {
                serde_json::json!({"cluster": op.cluster, "namespace": op.namespace,
                    "name": op.name, "command": op.command, "logs": op.logs,
                    "charts": op.charts.iter().map(|c| serde_json::json!({
                        "chart": c.chart, "version": c.version, "release": c.release,
                        "values": c.values, "description": c.description,
                        "annotations": c.annotations,
                    })).collect::<Vec<_>>()})
            })
            .collect();
        let legacy: Vec<Value> = self
            .legacy_apps
            .values()
            .map(|a| {
                let rev = |r: &LegacyRevision| {
                    serde_json::json!({"externalId": r.external_id, "answers": r.answers,
                                       "valuesYaml": r.values_yaml})
                };
                serde_json::json!({"project": a.project_id, "name": a.name,
                    "namespace": a.target_namespace, "current": rev(&a.current),
                    "history": a.history.iter().map(rev).collect::<Vec<_>>(),
                    "helm": a.helm.iter().map(|h| serde_json::json!({
                        "chart": h.chart, "version": h.version, "valuesYaml": h.values_yaml,
                        "description": h.description,
                    })).collect::<Vec<_>>()})
            })
            .collect();
        serde_json::json!({
            "releases": releases,
            "operations": operations,
            "legacy_apps": legacy,
            "history": serde_json::to_value(&self.history).unwrap_or(Value::Null),
        })
    }

    pub fn count(&mut self, key: String) {
        *self.counters.entry(key).or_default() += 1;
    }

    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    pub fn cluster_mut(&mut self, id: &str) -> Option<&mut Cluster> {
        self.clusters.iter_mut().find(|c| c.id == id)
    }

    pub fn project_state(&self, p: &Project, now: Instant) -> &'static str {
        if p.removing_since.is_some() {
            "removing"
        } else if now < p.created + self.config_timings.project_activate {
            "initializing"
        } else {
            "active"
        }
    }

    pub fn namespace_state(&self, ns: &Namespace, now: Instant) -> &'static str {
        if ns.removing_since.is_some() {
            "removing"
        } else if now < ns.created + self.config_timings.namespace_activate {
            "activating"
        } else {
            "active"
        }
    }

    /// Whether the namespace is still inside its post-creation RBAC window (reads get 403).
    pub fn namespace_forbidden(&self, ns: &Namespace, now: Instant) -> bool {
        now < ns.created + self.config_timings.namespace_forbidden_window
    }

    pub fn visible_release(&self, cluster: &str, ns: &str, name: &str) -> Option<&Release> {
        self.releases
            .get(&(cluster.to_owned(), ns.to_owned(), name.to_owned()))
            .filter(|r| !r.revisions.is_empty())
    }

    /// Applies every transition that is due at `now`.
    pub fn advance(&mut self, now: Instant) {
        let removal = self.config_timings.project_activate;
        let (gone, kept): (Vec<Project>, Vec<Project>) = std::mem::take(&mut self.projects)
            .into_iter()
            .partition(|p| p.removing_since.is_some_and(|since| now >= since + removal));
        self.projects = kept;
        // As Rancher does: a removed project takes its namespaces (and their apps) with it.
        for p in gone {
            for ns in self
                .namespaces
                .get_mut(&p.cluster_id)
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                if ns.project_id.as_deref() == Some(p.id.as_str()) {
                    ns.removing_since.get_or_insert(now);
                }
            }
            self.legacy_apps.retain(|(project, _), _| *project != p.id);
        }
        let ns_removal = self.config_timings.namespace_activate;
        let mut removed = Vec::new();
        for (cluster, map) in &mut self.namespaces {
            map.retain(|name, ns| {
                let keep = ns
                    .removing_since
                    .is_none_or(|since| now < since + ns_removal);
                if !keep {
                    removed.push((cluster.clone(), name.clone()));
                }
                keep
            });
        }
        // A deleted namespace takes its Helm releases (their secrets), operations and legacy
        // apps with it.
        for (cluster, name) in removed {
            self.releases
                .retain(|(c, n, _), _| !(*c == cluster && *n == name));
            self.operations
                .retain(|(c, n, _), _| !(*c == cluster && *n == name));
            self.k8s_secrets
                .retain(|(c, n, _), _| !(*c == cluster && *n == name));
            self.legacy_apps.retain(|(project, _), a| {
                !(a.target_namespace == name && project.split(':').next() == Some(cluster.as_str()))
            });
        }

        let keys: Vec<_> = self.operations.keys().cloned().collect();
        for key in keys {
            loop {
                let op = &self.operations[&key];
                match op.phase {
                    Phase::Waiting if op.start_at.is_some_and(|t| now >= t) => {
                        self.start_operation(&key)
                    }
                    Phase::Running if op.end_at.is_some_and(|t| now >= t) => {
                        self.finish_operation(&key)
                    }
                    _ => break,
                }
            }
        }
        let ttl = self.config_timings.operation_gc_ttl;
        self.operations
            .retain(|_, op| op.finished_at.is_none_or(|t| now < t + ttl));
    }

    /// Issues another API key, optionally expiring after `ttl` and scoped to one cluster.
    pub fn issue_token(&mut self, ttl: Option<Duration>, cluster: Option<&str>) -> String {
        let key = format!(
            "token-{}:{}{}",
            self.next_suffix(),
            self.next_suffix(),
            self.next_suffix()
        );
        self.tokens.push(Token {
            key: key.clone(),
            expires_at: ttl.map(|t| Instant::now() + t),
            cluster: cluster.map(str::to_owned),
        });
        key
    }

    /// Creates the namespace (unowned, active) if it is missing, as an install does.
    pub fn ensure_namespace(&mut self, cluster: &str, name: &str, now: Instant) {
        self.namespaces
            .entry(cluster.into())
            .or_default()
            .entry(name.into())
            .or_insert_with(|| Namespace {
                name: name.into(),
                project_id: None,
                created: now - Duration::from_secs(3600),
                created_wall: SystemTime::now(),
                removing_since: None,
            });
    }

    /// The revisions of a release in any cluster (v2), or of a legacy app targeting the
    /// namespace, oldest first; `None` when there is neither.
    pub fn release_history(&self, namespace: &str, release: &str) -> Option<Vec<RevisionInfo>> {
        let v2 = self
            .releases
            .iter()
            .find(|((_, n, r), rel)| n == namespace && r == release && !rel.revisions.is_empty())
            .map(|(_, rel)| rel.revisions.iter().map(RevisionInfo::from).collect());
        v2.or_else(|| {
            self.legacy_apps
                .values()
                .find(|a| a.target_namespace == namespace && a.name == release)
                .map(|a| a.helm_history(Instant::now(), &self.config_timings))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_unique_and_short() {
        let mut w = World::new(&SimConfig::default());
        let a: std::collections::BTreeSet<String> = (0..1000).map(|_| w.next_suffix()).collect();
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|s| s.len() == 5));
    }
}
