//! Helm releases through Apps & Marketplace (Steve v1): reading Apps, and the install/upgrade/
//! uninstall actions that are never blindly resent (after an uncertain outcome the client looks
//! at the release and its operations again).

mod history;
mod uninstall;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

pub use history::{rollback_description, ReleaseRevision};
pub use uninstall::UninstallOutcome;

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
}

#[cfg(test)]
mod tests;
