//! The simulated Rancher state: clusters, projects, namespaces, repos, Helm releases and
//! operations. Time-driven transitions are computed from timestamps on every request
//! ([`World::advance`]), so the state always reads "as of now" without background tasks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{Faults, SimConfig, Timings};

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
}

#[derive(Debug, Clone)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
    pub app_version: String,
    /// `catalog.cattle.io/kube-version`: versions whose constraint does not fit are hidden from
    /// the index unless `skipFilter=true`.
    pub kube_version: Option<String>,
    pub fits: bool,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub name: String,
    pub url: String,
    /// Newest first per chart.
    pub charts: BTreeMap<String, Vec<ChartVersion>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    PendingInstall,
    PendingUpgrade,
    Deployed,
    Failed,
    Superseded,
    Uninstalling,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::PendingInstall => "pending-install",
            ReleaseStatus::PendingUpgrade => "pending-upgrade",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Uninstalling => "uninstalling",
        }
    }

    fn pending(self) -> bool {
        matches!(
            self,
            ReleaseStatus::PendingInstall
                | ReleaseStatus::PendingUpgrade
                | ReleaseStatus::Uninstalling
        )
    }
}

#[derive(Debug, Clone)]
pub struct Revision {
    pub number: u32,
    pub chart: String,
    pub version: String,
    pub app_version: String,
    pub values: Value,
    pub status: ReleaseStatus,
}

#[derive(Debug, Clone, Default)]
pub struct Release {
    pub revisions: Vec<Revision>,
    pub created_wall: Option<SystemTime>,
}

impl Release {
    pub fn current(&self) -> Option<&Revision> {
        self.revisions.last()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    Upgrade,
    Uninstall,
}

/// One chart of an install/upgrade request.
#[derive(Debug, Clone)]
pub struct ChartRequest {
    pub chart: String,
    pub version: String,
    pub app_version: String,
    pub release: String,
    pub values: Value,
    pub reset_values: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Running,
    Succeeded,
    Failed(String),
}

/// What the faults decided for this operation when it was created.
#[derive(Debug, Clone, Default)]
pub struct OpPlan {
    pub fail_message: Option<String>,
    pub stuck_pending_pod: bool,
    pub vanish: bool,
    pub stuck_pending_release: bool,
    pub extra_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub action: Action,
    pub charts: Vec<ChartRequest>,
    pub wait: bool,
    pub created_wall: SystemTime,
    pub start_at: Option<Instant>,
    pub end_at: Option<Instant>,
    pub finished_at: Option<Instant>,
    pub phase: Phase,
    pub plan: OpPlan,
    pub command: Vec<String>,
    pub logs: String,
}

/// A Helm action that actually ran (for tests proving idempotency and order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmRecord {
    pub cluster: String,
    pub namespace: String,
    pub release: String,
    pub action: Action,
    pub chart: String,
    pub version: String,
    pub operation: String,
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
    pub legacy_apps: BTreeMap<(String, String), crate::legacy::LegacyApp>,
    next_id: u64,
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
            next_id: 0,
        };
        for (name, id) in &config.clusters {
            if !world.clusters.iter().any(|c| &c.id == id) {
                world.clusters.push(Cluster {
                    id: id.clone(),
                    name: name.clone(),
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

    pub fn count(&mut self, key: String) {
        *self.counters.entry(key).or_default() += 1;
    }

    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
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
        if now < ns.created + self.config_timings.namespace_activate {
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
        self.projects
            .retain(|p| p.removing_since.is_none_or(|since| now < since + removal));

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

    fn start_operation(&mut self, key: &(String, String, String)) {
        let mut op = self.operations.remove(key).expect("operation exists");
        let start = op.start_at.expect("scheduled");
        let run = self.config_timings.operation_run
            + op.plan.extra_delay
            + if op.wait {
                self.config_timings.helm_ready
            } else {
                Duration::ZERO
            };
        op.phase = Phase::Running;
        op.end_at = Some(start + run);
        let mut failure = None;
        for chart in &op.charts {
            let rkey = (
                op.cluster.clone(),
                op.namespace.clone(),
                chart.release.clone(),
            );
            let release = self.releases.entry(rkey.clone()).or_default();
            let current = release.current().cloned();
            let in_progress = current.as_ref().is_some_and(|r| r.status.pending());
            let line = match op.action {
                Action::Install | Action::Upgrade if in_progress => {
                    failure = Some(format!(
                        "Error: {}: another operation (install/upgrade/rollback) is in progress",
                        if op.action == Action::Install {
                            "INSTALLATION FAILED"
                        } else {
                            "UPGRADE FAILED"
                        }
                    ));
                    break;
                }
                Action::Install if current.is_some() => {
                    failure = Some(
                        "Error: INSTALLATION FAILED: cannot re-use a name that is still in use"
                            .into(),
                    );
                    break;
                }
                Action::Install | Action::Upgrade => {
                    if op.plan.vanish {
                        continue;
                    }
                    let values = match (&current, chart.reset_values, is_empty(&chart.values)) {
                        // Non-empty values replace; empty values silently reuse the old ones.
                        (Some(prev), false, true) => prev.values.clone(),
                        _ => chart.values.clone(),
                    };
                    let number = current.as_ref().map_or(1, |r| r.number + 1);
                    let status = if current.is_some() {
                        ReleaseStatus::PendingUpgrade
                    } else {
                        ReleaseStatus::PendingInstall
                    };
                    if release.revisions.is_empty() {
                        release.created_wall = Some(SystemTime::now());
                    }
                    release.revisions.push(Revision {
                        number,
                        chart: chart.chart.clone(),
                        version: chart.version.clone(),
                        app_version: chart.app_version.clone(),
                        values,
                        status,
                    });
                    format!("{} {} revision {number}", chart.release, status.as_str())
                }
                Action::Uninstall => match release.revisions.last_mut() {
                    None => {
                        failure = Some(format!(
                            "Error: uninstall: Release not loaded: {}: release: not found",
                            chart.release
                        ));
                        break;
                    }
                    Some(rev) => {
                        rev.status = ReleaseStatus::Uninstalling;
                        format!("uninstalling {}", chart.release)
                    }
                },
            };
            op.logs.push_str(&line);
            op.logs.push('\n');
            self.history.push(HelmRecord {
                cluster: op.cluster.clone(),
                namespace: op.namespace.clone(),
                release: chart.release.clone(),
                action: op.action,
                chart: chart.chart.clone(),
                version: chart.version.clone(),
                operation: op.name.clone(),
            });
        }
        if let Some(msg) = failure {
            op.logs.push_str(&msg);
            op.logs.push('\n');
            op.phase = Phase::Failed(msg);
            op.finished_at = Some(start);
            op.end_at = Some(start);
        }
        self.operations.insert(key.clone(), op);
    }

    fn finish_operation(&mut self, key: &(String, String, String)) {
        let mut op = self.operations.remove(key).expect("operation exists");
        let end = op.end_at.expect("scheduled");
        op.finished_at = Some(end);
        let fail = op.plan.fail_message.clone();
        for chart in &op.charts {
            let rkey = (
                op.cluster.clone(),
                op.namespace.clone(),
                chart.release.clone(),
            );
            let Some(release) = self.releases.get_mut(&rkey) else {
                continue;
            };
            match op.action {
                Action::Uninstall => {
                    if fail.is_none() {
                        self.releases.remove(&rkey);
                    }
                }
                Action::Install | Action::Upgrade => {
                    if op.plan.stuck_pending_release || op.plan.vanish {
                        continue;
                    }
                    let n = release.revisions.len();
                    if n == 0 {
                        continue;
                    }
                    if fail.is_some() {
                        release.revisions[n - 1].status = ReleaseStatus::Failed;
                    } else {
                        for prev in &mut release.revisions[..n - 1] {
                            if prev.status == ReleaseStatus::Deployed {
                                prev.status = ReleaseStatus::Superseded;
                            }
                        }
                        release.revisions[n - 1].status = ReleaseStatus::Deployed;
                    }
                }
            }
        }
        op.phase = match fail {
            Some(msg) => {
                op.logs.push_str(&msg);
                op.logs.push('\n');
                Phase::Failed(msg)
            }
            None => {
                op.logs.push_str("done\n");
                Phase::Succeeded
            }
        };
        self.operations.insert(key.clone(), op);
    }

    /// Schedules a new operation; the Helm work happens in [`World::advance`].
    #[allow(clippy::too_many_arguments)]
    pub fn create_operation(
        &mut self,
        cluster: &str,
        namespace: &str,
        action: Action,
        charts: Vec<ChartRequest>,
        wait: bool,
        timeout: &str,
        now: Instant,
    ) -> String {
        let name = format!("helm-operation-{}", self.next_suffix());
        let faults = &self.faults;
        let first_chart = charts.first().map(|c| c.chart.clone()).unwrap_or_default();
        let plan = if action == Action::Uninstall {
            OpPlan::default()
        } else {
            OpPlan {
                fail_message: faults.fail_charts.get(&first_chart).cloned().or_else(|| {
                    (faults.readiness_timeout && wait).then(|| {
                        format!(
                            "Error: {} FAILED: context deadline exceeded",
                            if action == Action::Install {
                                "INSTALLATION"
                            } else {
                                "UPGRADE"
                            }
                        )
                    })
                }),
                stuck_pending_pod: faults.pod_stuck_pending,
                vanish: faults.pod_vanishes,
                stuck_pending_release: faults.stuck_pending_install,
                extra_delay: Duration::from_millis(faults.install_extra_delay_ms),
            }
        };
        let mut command = Vec::new();
        for c in &charts {
            let mut cmd: Vec<String> = match (action, charts.len()) {
                (Action::Install, 1) => vec!["helm".into(), "install".into()],
                (Action::Uninstall, _) => vec!["helm".into(), "uninstall".into()],
                _ => vec!["helm".into(), "upgrade".into(), "--install".into()],
            };
            cmd.extend([
                format!("--namespace={namespace}"),
                format!("--timeout={timeout}"),
            ]);
            if wait && action != Action::Uninstall {
                cmd.push("--wait=true".into());
            }
            cmd.push(c.release.clone());
            if action != Action::Uninstall {
                cmd.push(format!("/home/shell/helm/{}-{}.tgz", c.chart, c.version));
            }
            command.push(cmd.join(" "));
        }
        let start_at = if plan.stuck_pending_pod {
            None
        } else {
            Some(now + self.config_timings.operation_wait)
        };
        let op = Operation {
            cluster: cluster.into(),
            namespace: namespace.into(),
            name: name.clone(),
            action,
            charts,
            wait,
            created_wall: SystemTime::now(),
            start_at,
            end_at: None,
            finished_at: None,
            phase: Phase::Waiting,
            plan,
            command: command.clone(),
            logs: command.iter().map(|c| format!("{c}\n")).collect(),
        };
        self.operations
            .insert((cluster.into(), namespace.into(), name.clone()), op);
        name
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
            });
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The `stable` repo with the charts of Berth's `insight` blueprint (and a few extra versions,
/// including one hidden by the Kubernetes-version filter).
pub fn insight_repo() -> Repo {
    let v = |name: &str, version: &str, app: &str| ChartVersion {
        name: name.into(),
        version: version.into(),
        app_version: app.into(),
        kube_version: None,
        fits: true,
    };
    let mut charts = BTreeMap::new();
    charts.insert(
        "foundation".to_string(),
        vec![
            v("foundation", "0.3.1", "0.3.1"),
            v("foundation", "0.3.0", "0.3.0"),
        ],
    );
    charts.insert(
        "certs".to_string(),
        vec![v("certs", "1.2.0", "1.14.4"), v("certs", "1.1.0", "1.13.2")],
    );
    let mut too_new = v("influxdb", "4.12.5", "1.8.10");
    too_new.kube_version = Some(">= 1.99.0-0".into());
    too_new.fits = false;
    charts.insert(
        "influxdb".to_string(),
        vec![
            too_new,
            v("influxdb", "4.3.2", "1.7.9"),
            v("influxdb", "4.3.1", "1.7.9"),
        ],
    );
    charts.insert(
        "dsm".to_string(),
        vec![v("dsm", "2.7.0", "2.7.0"), v("dsm", "2.6.3", "2.6.3")],
    );
    Repo {
        name: "stable".into(),
        url: "https://charts.helm.sh/stable".into(),
        charts,
    }
}

/// RFC 3339 timestamp (UTC, seconds) for `metadata.creationTimestamp`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// kstatus-style conditions of an operation.
pub fn operation_conditions(op: &Operation) -> Value {
    let (reconciling, stalled, msg) = match &op.phase {
        Phase::Waiting => (true, false, "waiting to run operation".to_string()),
        Phase::Running => (true, false, "running operation".to_string()),
        Phase::Succeeded => (false, false, String::new()),
        Phase::Failed(_) => (
            false,
            true,
            format!("pod {}: container helm: exit code: 1", op.name),
        ),
    };
    let b = |v: bool| if v { "True" } else { "False" };
    json!([
        {"type": "Reconciling", "status": b(reconciling), "message": if reconciling { msg.clone() } else { String::new() }},
        {"type": "Stalled", "status": b(stalled), "message": if stalled { msg } else { String::new() }},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_epoch_and_leap_day() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn suffixes_are_unique_and_short() {
        let mut w = World::new(&SimConfig::default());
        let a: std::collections::BTreeSet<String> = (0..1000).map(|_| w.next_suffix()).collect();
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|s| s.len() == 5));
    }
}
