//! Helm releases through Apps & Marketplace (Steve v1): reading Apps, and the install/upgrade/
//! uninstall actions that are never blindly resent (after an uncertain outcome the client looks
//! at the release and its operations again).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

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

/// Helm's status of a release (`spec.info.status` of an App), parsed once so the deploy logic
/// matches on variants instead of comparing strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HelmStatus {
    Deployed,
    Failed,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
    Superseded,
    Uninstalling,
    Uninstalled,
    /// Helm's own `unknown`.
    Unknown,
    /// Anything else (or nothing), kept as Rancher wrote it.
    Other(String),
}

impl HelmStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "deployed" => Self::Deployed,
            "failed" => Self::Failed,
            "pending-install" => Self::PendingInstall,
            "pending-upgrade" => Self::PendingUpgrade,
            "pending-rollback" => Self::PendingRollback,
            "superseded" => Self::Superseded,
            "uninstalling" => Self::Uninstalling,
            "uninstalled" => Self::Uninstalled,
            "unknown" => Self::Unknown,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Helm's spelling (`pending-install`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::PendingInstall => "pending-install",
            Self::PendingUpgrade => "pending-upgrade",
            Self::PendingRollback => "pending-rollback",
            Self::Superseded => "superseded",
            Self::Uninstalling => "uninstalling",
            Self::Uninstalled => "uninstalled",
            Self::Unknown => "unknown",
            Self::Other(s) => s,
        }
    }

    /// An action is under way (or was left half-done): Helm refuses another until it ends.
    pub fn is_pending(&self) -> bool {
        match self {
            Self::PendingInstall
            | Self::PendingUpgrade
            | Self::PendingRollback
            | Self::Uninstalling => true,
            // A pending state from a newer Helm blocks the same way.
            Self::Other(s) => s.starts_with("pending-"),
            _ => false,
        }
    }
}

impl std::fmt::Display for HelmStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release as the App resource reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppStatus {
    pub release: String,
    pub namespace: String,
    pub status: HelmStatus,
    pub revision: u64,
    pub chart: String,
    pub chart_version: String,
    pub values: Value,
    pub description: String,
}

impl AppStatus {
    pub fn is_pending(&self) -> bool {
        self.status.is_pending()
    }

    fn from_json(v: &Value) -> Self {
        let spec = &v["spec"];
        AppStatus {
            release: string_at(v, &["metadata", "name"]),
            namespace: string_at(v, &["metadata", "namespace"]),
            status: HelmStatus::parse(&string_at(spec, &["info", "status"])),
            revision: spec["version"].as_u64().unwrap_or(0),
            chart: string_at(spec, &["chart", "metadata", "name"]),
            chart_version: string_at(spec, &["chart", "metadata", "version"]),
            values: match &spec["values"] {
                Value::Null => json!({}),
                v => v.clone(),
            },
            description: string_at(spec, &["info", "description"]),
        }
    }
}

/// What [`RancherClient::deploy_chart`] (or a rollback) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartAction {
    /// Already deployed at the desired version with the same values: nothing sent.
    Unchanged,
    Installed,
    Upgraded,
    /// A rollback made a new revision with an earlier revision's chart version and values.
    RolledBack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartOutcome {
    pub action: ChartAction,
    /// The release's revision now (legacy mode: the apprevision's position, see
    /// [`RancherClient::legacy_history`]).
    pub revision: u64,
    pub chart_version: String,
    /// The revision the release was at before an upgrade or rollback, to roll back to; `None`
    /// for installs and `Unchanged`.
    pub previous_revision: Option<u64>,
}

/// One revision of a release (Helm's history, newest last).
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRevision {
    pub revision: u64,
    pub chart: String,
    pub chart_version: String,
    /// The user-supplied values of that revision.
    pub values: Value,
    pub status: HelmStatus,
    /// Helm's description: `Install complete`, `Upgrade complete`, `Rollback to 1`,
    /// `Upgrade "x" failed: …` (empty in legacy mode).
    pub description: String,
    /// The cluster repo the chart came from (`catalog.cattle.io/ui-source-repo`), when known.
    pub repo: Option<String>,
    /// Legacy mode: the apprevision's name (`apprevision-xxxxx`), which `rollback` takes.
    pub legacy_revision_id: Option<String>,
}

/// The description Berth gives a rollback's revision, as `helm rollback` does.
pub fn rollback_description(to_revision: u64) -> String {
    format!("Rollback to {to_revision}")
}

/// What [`RancherClient::uninstall`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    Removed,
    NotInstalled,
}

impl RancherClient {
    /// The App of a release, or `None` when Helm has no release by that name.
    pub async fn get_app(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Option<AppStatus>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.apps/{}/{}",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace),
            encode_component(release)
        );
        Ok(self.get_opt(&path).await?.map(|v| AppStatus::from_json(&v)))
    }

    /// Every App in the namespace; none when the namespace does not exist (a proof read after
    /// a decommission: a 404 is an empty list, not an error).
    pub async fn list_apps(&self, target: &Target) -> Result<Vec<AppStatus>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.apps/{}",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace)
        );
        let Some(v) = self.get_opt(&path).await? else {
            return Ok(Vec::new());
        };
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(AppStatus::from_json)
            .collect())
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
        self.apply_release(target, spec, None).await
    }

    /// [`deploy_chart`](Self::deploy_chart), with a description for the new revision (a
    /// rollback's `Rollback to N`; such an upgrade reports [`ChartAction::RolledBack`]).
    async fn apply_release(
        &self,
        target: &Target,
        spec: &ChartSpec,
        description: Option<String>,
    ) -> Result<ChartOutcome, RancherError> {
        let budget = spec.timeout + self.cfg.operation_grace;
        let deadline = Instant::now() + budget;
        // Each uncertain POST (timeout) leads to one more look at the state; bounded.
        for _ in 0..=self.cfg.retry.max_attempts {
            let app = self.get_app(target, &spec.release).await?;
            if let Some(a) = &app {
                if a.status == HelmStatus::Deployed
                    && a.chart_version == spec.version
                    && a.values == spec.values
                {
                    tracing::info!(revision = a.revision, "release already as desired");
                    return Ok(ChartOutcome {
                        action: ChartAction::Unchanged,
                        revision: a.revision,
                        chart_version: a.chart_version.clone(),
                        previous_revision: None,
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
                        status: a.status.to_string(),
                    });
                }
            }
            let previous = app.as_ref().map_or(0, |a| a.revision);
            let (action, chart_action) = match (&app, &description) {
                (None, _) => ("install", ChartAction::Installed),
                (Some(_), None) => ("upgrade", ChartAction::Upgraded),
                (Some(_), Some(_)) => ("upgrade", ChartAction::RolledBack),
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
                // Rancher reads `resetValues` (and `description`) per chart (`ChartUpgrade`);
                // `historyMax` belongs to the action (`ChartUpgradeAction`).
                body["charts"][0]["resetValues"] = json!(true);
                if let Some(d) = &description {
                    body["charts"][0]["description"] = json!(d);
                }
                body["historyMax"] = json!(5);
            }
            let path = format!(
                "{}/catalog.cattle.io.clusterrepos/{}?action={action}",
                Self::steve_base(&target.cluster_id),
                encode_component(&spec.repo)
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
            let op_name = string_at(&out, &["operationName"]);
            self.wait_operation(target, &op_name, &spec.release, action, deadline, budget)
                .await?;
            let app = self.confirm_app(target, spec, previous).await?;
            return Ok(ChartOutcome {
                action: chart_action,
                revision: app.revision,
                chart_version: app.chart_version,
                previous_revision: (chart_action != ChartAction::Installed).then_some(previous),
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

    /// The Helm history of a release, oldest first, read from Helm's release secrets through
    /// Steve (`secrets/<ns>?labelSelector=owner=helm,name=<release>&includeHelmData=true`, which
    /// Steve decodes into `data.release`). Empty when there is no release (or no namespace).
    pub async fn release_history(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Vec<ReleaseRevision>, RancherError> {
        let selector = format!("owner=helm,name={release}");
        let path = format!(
            "{}/secrets/{}?labelSelector={}&includeHelmData=true",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace),
            encode_component(&selector)
        );
        let Some(v) = self.get_opt(&path).await? else {
            return Ok(Vec::new());
        };
        let mut revisions: Vec<ReleaseRevision> = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["metadata"]["labels"]["name"] == release)
            .filter_map(|s| {
                let r = &s["data"]["release"];
                let revision = r["version"].as_u64().or_else(|| {
                    s["metadata"]["labels"]["version"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                })?;
                let meta = &r["chart"]["metadata"];
                Some(ReleaseRevision {
                    revision,
                    chart: string_at(meta, &["name"]),
                    chart_version: string_at(meta, &["version"]),
                    values: match &r["config"] {
                        Value::Null => json!({}),
                        v => v.clone(),
                    },
                    status: HelmStatus::parse(&string_at(r, &["info", "status"])),
                    description: string_at(r, &["info", "description"]),
                    repo: meta["annotations"]["catalog.cattle.io/ui-source-repo"]
                        .as_str()
                        .map(str::to_owned),
                    legacy_revision_id: None,
                })
            })
            .collect();
        revisions.sort_by_key(|r| r.revision);
        Ok(revisions)
    }

    /// Rolls a release back to `to_revision`: a new revision with that revision's chart
    /// version and user values, described `Rollback to N` as `helm rollback` would.
    ///
    /// Apps & Marketplace has **no rollback action** (Steve's App schema offers only
    /// `uninstall`; the pre-2.5 `releases` rollback was removed, rancher/dashboard#1231), so
    /// this is an upgrade through the cluster repo with `resetValues:true` and the chart's
    /// `description`, which is what Rancher's API can do.
    ///
    /// Idempotent by looking first: when the release is already `deployed` with the target
    /// revision's chart version and values, nothing is sent (`Unchanged`) — so a call repeated
    /// after a crash never rolls back twice. A rollback (or any action) still running is
    /// followed, not doubled. Errors: the revision is not in the history → `RevisionNotFound`;
    /// Helm fails → `OperationFailed` (the release gets a `failed` revision).
    #[tracing::instrument(skip_all, fields(cluster_id = %target.cluster_id, namespace = %target.namespace, release = %release, to_revision))]
    pub async fn rollback_release(
        &self,
        target: &Target,
        release: &str,
        to_revision: u64,
        timeout: Duration,
    ) -> Result<ChartOutcome, RancherError> {
        let history = self.release_history(target, release).await?;
        let Some(goal) = history.iter().find(|r| r.revision == to_revision) else {
            return Err(RancherError::RevisionNotFound {
                release: release.to_owned(),
                revision: to_revision.to_string(),
                available: history.iter().map(|r| r.revision.to_string()).collect(),
            });
        };
        let repo = goal
            .repo
            .clone()
            .or_else(|| history.iter().rev().find_map(|r| r.repo.clone()))
            .ok_or_else(|| RancherError::Decode {
                path: format!("release {release} revision {to_revision}"),
                message: "the chart has no catalog.cattle.io/ui-source-repo annotation: \
                          cannot tell which cluster repo to upgrade from"
                    .into(),
            })?;
        let spec = ChartSpec {
            release: release.to_owned(),
            repo,
            chart: goal.chart.clone(),
            version: goal.chart_version.clone(),
            values: goal.values.clone(),
            wait: true,
            timeout,
        };
        self.apply_release(target, &spec, Some(rollback_description(to_revision)))
            .await
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
                    match a.status {
                        HelmStatus::Deployed if a.chart_version == spec.version => {
                            return Ok(a.clone())
                        }
                        HelmStatus::Deployed => {
                            return Err(RancherError::ReleaseFailed {
                                release: spec.release.clone(),
                                status: a.status.to_string(),
                                description: format!(
                                    "deployed chart version {} instead of {}",
                                    a.chart_version, spec.version
                                ),
                            })
                        }
                        HelmStatus::Failed => {
                            return Err(RancherError::ReleaseFailed {
                                release: spec.release.clone(),
                                status: a.status.to_string(),
                                description: a.description.clone(),
                            })
                        }
                        _ => {}
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(match app {
                    Some(a) if a.is_pending() => RancherError::ReleaseStuck {
                        release: spec.release.clone(),
                        status: a.status.to_string(),
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
        let Some(app) = self.get_app(target, release).await? else {
            return Ok(UninstallOutcome::NotInstalled);
        };
        let budget = timeout + self.cfg.operation_grace;
        let deadline = Instant::now() + budget;
        // An uninstall already under way (a worker killed after sending it) is followed, not
        // sent again; so is any other action still running for the release.
        let running = self.in_flight_operation(target, release).await?;
        if app.status == HelmStatus::Uninstalling || running.is_some() {
            if let Some(op) = running {
                tracing::info!(operation = %op.name, "following an operation already running for the release");
                self.wait_operation(target, &op.name, release, "uninstall", deadline, budget)
                    .await?;
            }
            if app.status == HelmStatus::Uninstalling {
                return self
                    .until_uninstalled(target, release, deadline, budget)
                    .await;
            }
            if self.get_app(target, release).await?.is_none() {
                return Ok(UninstallOutcome::Removed);
            }
        }
        let path = format!(
            "{}/catalog.cattle.io.apps/{}/{}?action=uninstall",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace),
            encode_component(release)
        );
        let body = json!({"timeout": berth_blueprint::format_go_duration(timeout)});
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
            let op = string_at(&out, &["operationName"]);
            self.wait_operation(target, &op, release, "uninstall", deadline, budget)
                .await?;
        }
        self.until_uninstalled(target, release, deadline, budget)
            .await
    }

    /// Waits until the release's App is gone (or reads `uninstalled`).
    async fn until_uninstalled(
        &self,
        target: &Target,
        release: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<UninstallOutcome, RancherError> {
        loop {
            match self.get_app(target, release).await? {
                None => return Ok(UninstallOutcome::Removed),
                Some(a) if a.status == HelmStatus::Uninstalled => {
                    return Ok(UninstallOutcome::Removed)
                }
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
}

#[cfg(test)]
mod tests;
