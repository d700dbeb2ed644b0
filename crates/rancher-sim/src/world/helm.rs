//! The Helm release model: releases with numbered revisions, and the operations (pods running
//! `helm`) that change them, with the faults each operation was dealt when it was created.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::World;

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
    /// Helm's `info.description`: "Install complete", "Upgrade complete", "Rollback to 1",
    /// `Upgrade "x" failed: …`, or what the request's chart `description` said.
    pub description: String,
    /// The annotations the request injected into Chart.yaml (`catalog.cattle.io/ui-source-repo*`).
    pub annotations: Map<String, Value>,
}

/// One revision as the control API and Steve's decoded Helm secrets show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionInfo {
    pub revision: u32,
    pub chart: String,
    pub version: String,
    #[serde(rename = "appVersion")]
    pub app_version: String,
    pub values: Value,
    pub status: String,
    pub description: String,
}

impl From<&Revision> for RevisionInfo {
    fn from(r: &Revision) -> Self {
        Self {
            revision: r.number,
            chart: r.chart.clone(),
            version: r.version.clone(),
            app_version: r.app_version.clone(),
            values: match &r.values {
                Value::Null => Value::Object(Map::new()),
                v => v.clone(),
            },
            status: r.status.as_str().to_owned(),
            description: r.description.clone(),
        }
    }
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
    /// Only through the legacy v3 `rollback` action: Apps & Marketplace has no rollback action,
    /// a v2 rollback is an upgrade whose chart `description` is "Rollback to N".
    Rollback,
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
    /// `charts[i].resetValues` (Rancher's `ChartUpgrade`; a top-level `resetValues` is ignored).
    pub reset_values: bool,
    /// `charts[i].description`: Helm's `--description`, kept as the revision's description.
    pub description: Option<String>,
    pub annotations: Map<String, Value>,
}

impl ChartRequest {
    /// A v2 "rollback": an upgrade described as `Rollback to N` (what Berth's client sends).
    pub fn is_rollback(&self) -> bool {
        self.description
            .as_deref()
            .is_some_and(|d| d.starts_with("Rollback to "))
    }
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
    /// The revision's description (`Rollback to 1` for rollbacks), empty for uninstalls.
    #[serde(default)]
    pub description: String,
}

impl World {
    pub(super) fn start_operation(&mut self, key: &(String, String, String)) {
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
                Action::Install | Action::Upgrade | Action::Rollback if in_progress => {
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
                Action::Install | Action::Upgrade | Action::Rollback => {
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
                        description: if current.is_some() {
                            "Preparing upgrade".into()
                        } else {
                            "Initial install underway".into()
                        },
                        annotations: chart.annotations.clone(),
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
                description: chart.description.clone().unwrap_or_default(),
            });
            let counter = match op.action {
                Action::Upgrade if chart.is_rollback() => "helm rollback",
                Action::Install => "helm install",
                Action::Upgrade => "helm upgrade",
                Action::Rollback => "helm rollback",
                Action::Uninstall => "helm uninstall",
            };
            self.count(counter.into());
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

    pub(super) fn finish_operation(&mut self, key: &(String, String, String)) {
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
                Action::Install | Action::Upgrade | Action::Rollback => {
                    if op.plan.stuck_pending_release || op.plan.vanish {
                        continue;
                    }
                    let n = release.revisions.len();
                    if n == 0 {
                        continue;
                    }
                    let first = n == 1;
                    if let Some(msg) = &fail {
                        // Helm's failRelease: the new revision is `failed`; the one deployed
                        // before it stays `deployed`.
                        let last = &mut release.revisions[n - 1];
                        last.status = ReleaseStatus::Failed;
                        last.description = if first {
                            format!("Release {:?} failed: {msg}", chart.release)
                        } else {
                            format!("Upgrade {:?} failed: {msg}", chart.release)
                        };
                    } else {
                        for prev in &mut release.revisions[..n - 1] {
                            if prev.status == ReleaseStatus::Deployed {
                                prev.status = ReleaseStatus::Superseded;
                            }
                        }
                        let last = &mut release.revisions[n - 1];
                        last.status = ReleaseStatus::Deployed;
                        last.description = match &chart.description {
                            Some(d) if !d.is_empty() => d.clone(),
                            _ if first => "Install complete".into(),
                            _ => "Upgrade complete".into(),
                        };
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
        let first = charts.first();
        let first_chart = first.map(|c| c.chart.clone()).unwrap_or_default();
        let first_release = first.map(|c| c.release.clone()).unwrap_or_default();
        // An upgrade of a release that exists (not the install an `upgrade --install` can be)
        // can be made to fail by `fail_upgrades`, a rollback by `fail_rollbacks`, by release or
        // chart name.
        let existing = self
            .releases
            .get(&(
                cluster.to_owned(),
                namespace.to_owned(),
                first_release.clone(),
            ))
            .is_some_and(|r| !r.revisions.is_empty());
        let by_name = |m: &std::collections::BTreeMap<String, String>| {
            m.get(&first_release)
                .or_else(|| m.get(&first_chart))
                .cloned()
        };
        let special = match action {
            Action::Upgrade if existing && first.is_some_and(ChartRequest::is_rollback) => {
                by_name(&faults.fail_rollbacks)
            }
            Action::Rollback => by_name(&faults.fail_rollbacks),
            Action::Upgrade if existing => by_name(&faults.fail_upgrades),
            _ => None,
        };
        let plan = if action == Action::Uninstall {
            OpPlan::default()
        } else {
            OpPlan {
                fail_message: special
                    .or_else(|| faults.fail_charts.get(&first_chart).cloned())
                    .or_else(|| {
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
                (Action::Rollback, _) => vec!["helm".into(), "rollback".into()],
                _ => vec!["helm".into(), "upgrade".into(), "--install".into()],
            };
            cmd.extend([
                format!("--namespace={namespace}"),
                format!("--timeout={timeout}"),
            ]);
            if wait && action != Action::Uninstall {
                cmd.push("--wait=true".into());
            }
            if action == Action::Upgrade {
                if c.reset_values {
                    cmd.push("--reset-values=true".into());
                }
                if let Some(d) = &c.description {
                    cmd.push(format!("--description={d}"));
                }
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
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}
