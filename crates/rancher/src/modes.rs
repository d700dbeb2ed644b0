//! One facade over both ways of installing charts: Apps & Marketplace (v2, the main path) and
//! legacy v3 apps (old servers). The caller picks an [`AppsMode`] once; every method dispatches
//! on it. Also the decommission proof read: what of a unit is still there.

use std::time::Duration;

use crate::apps::{ChartOutcome, ChartSpec, HelmStatus, ReleaseRevision, Target, UninstallOutcome};
use crate::client::RancherClient;
use crate::error::RancherError;
use crate::legacy::{LegacyAppStatus, LegacyCatalog};
use crate::projects::{Namespace, Project};

/// Which Rancher API installs the charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppsMode {
    /// Apps & Marketplace (`catalog.cattle.io`, Rancher 2.5+).
    Apps,
    /// Legacy v3 apps from a catalog (`catalog://?catalog=…&type=clusterCatalog&template=…&version=…`):
    /// the app lives in the project, targeting the namespace. The chart spec's `repo` is not
    /// used; `catalog` names where the templates come from.
    Legacy {
        project_id: String,
        catalog: LegacyCatalog,
    },
}

/// A release as either API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseState {
    pub release: String,
    pub chart: String,
    pub chart_version: String,
    /// Helm's revision (legacy: the applied apprevision's position).
    pub revision: u64,
    /// Legacy apps report `Deployed` when ready, `Failed` on error, `PendingUpgrade` while
    /// installing/deploying, `Uninstalling` while removing.
    pub status: HelmStatus,
}

/// What remains of a unit (a decommission's proof read): all empty means nothing remains.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitRemains {
    pub project: Option<Project>,
    pub namespace: Option<Namespace>,
    pub apps: Vec<crate::apps::AppStatus>,
    pub legacy_apps: Vec<LegacyAppStatus>,
}

impl UnitRemains {
    pub fn is_empty(&self) -> bool {
        self.project.is_none()
            && self.namespace.is_none()
            && self.apps.is_empty()
            && self.legacy_apps.is_empty()
    }
}

fn legacy_state(a: &LegacyAppStatus, revision: u64) -> ReleaseState {
    let status = match a.state.as_str() {
        "active" => HelmStatus::Deployed,
        "removing" => HelmStatus::Uninstalling,
        "installing" | "deploying" | "upgrading" => HelmStatus::PendingUpgrade,
        "error" | "failed" => HelmStatus::Failed,
        other => HelmStatus::Other(other.to_owned()),
    };
    ReleaseState {
        release: a.name.clone(),
        chart: a.chart.clone(),
        chart_version: a.chart_version.clone(),
        revision,
        status,
    }
}

impl RancherClient {
    /// Installs or upgrades (or leaves alone) one release: [`deploy_chart`](Self::deploy_chart)
    /// or [`deploy_chart_legacy`](Self::deploy_chart_legacy).
    pub async fn deploy(
        &self,
        mode: &AppsMode,
        target: &Target,
        spec: &ChartSpec,
    ) -> Result<ChartOutcome, RancherError> {
        match mode {
            AppsMode::Apps => self.deploy_chart(target, spec).await,
            AppsMode::Legacy {
                project_id,
                catalog,
            } => {
                self.deploy_chart_legacy(project_id, &target.namespace, catalog, spec)
                    .await
            }
        }
    }

    /// A release's chart version, revision and status; `None` when it is not installed.
    pub async fn release_status(
        &self,
        mode: &AppsMode,
        target: &Target,
        release: &str,
    ) -> Result<Option<ReleaseState>, RancherError> {
        match mode {
            AppsMode::Apps => Ok(self.get_app(target, release).await?.map(|a| ReleaseState {
                release: a.release,
                chart: a.chart,
                chart_version: a.chart_version,
                revision: a.revision,
                status: a.status,
            })),
            AppsMode::Legacy { project_id, .. } => {
                let Some(app) = self
                    .list_legacy_apps(project_id)
                    .await?
                    .into_iter()
                    .find(|a| a.name == release && a.namespace == target.namespace)
                else {
                    return Ok(None);
                };
                let revision = self
                    .legacy_history(project_id, release)
                    .await?
                    .iter()
                    .rev()
                    .find(|r| r.status == HelmStatus::Deployed)
                    .map_or(0, |r| r.revision);
                Ok(Some(legacy_state(&app, revision)))
            }
        }
    }

    /// A release's revisions, oldest first ([`release_history`](Self::release_history) /
    /// [`legacy_history`](Self::legacy_history)).
    pub async fn history(
        &self,
        mode: &AppsMode,
        target: &Target,
        release: &str,
    ) -> Result<Vec<ReleaseRevision>, RancherError> {
        match mode {
            AppsMode::Apps => self.release_history(target, release).await,
            AppsMode::Legacy { project_id, .. } => self.legacy_history(project_id, release).await,
        }
    }

    /// Rolls a release back to an earlier revision ([`rollback_release`](Self::rollback_release)
    /// / [`rollback_legacy`](Self::rollback_legacy)); `Unchanged` when it is already there.
    pub async fn rollback(
        &self,
        mode: &AppsMode,
        target: &Target,
        release: &str,
        to_revision: u64,
        timeout: Duration,
    ) -> Result<ChartOutcome, RancherError> {
        match mode {
            AppsMode::Apps => {
                self.rollback_release(target, release, to_revision, timeout)
                    .await
            }
            AppsMode::Legacy { project_id, .. } => {
                self.rollback_legacy(project_id, release, to_revision, timeout)
                    .await
            }
        }
    }

    /// Uninstalls a release and waits until it is gone ([`uninstall`](Self::uninstall) /
    /// [`uninstall_legacy`](Self::uninstall_legacy)).
    pub async fn uninstall_release(
        &self,
        mode: &AppsMode,
        target: &Target,
        release: &str,
        timeout: Duration,
    ) -> Result<UninstallOutcome, RancherError> {
        match mode {
            AppsMode::Apps => self.uninstall(target, release, timeout).await,
            AppsMode::Legacy { project_id, .. } => self.uninstall_legacy(project_id, release).await,
        }
    }

    /// The releases of the unit's namespace (legacy: the project's apps targeting it). Empty
    /// when the namespace or project is gone.
    pub async fn list_releases(
        &self,
        mode: &AppsMode,
        target: &Target,
    ) -> Result<Vec<ReleaseState>, RancherError> {
        match mode {
            AppsMode::Apps => Ok(self
                .list_apps(target)
                .await?
                .into_iter()
                .map(|a| ReleaseState {
                    release: a.release,
                    chart: a.chart,
                    chart_version: a.chart_version,
                    revision: a.revision,
                    status: a.status,
                })
                .collect()),
            AppsMode::Legacy { project_id, .. } => Ok(self
                .list_legacy_apps(project_id)
                .await?
                .iter()
                .filter(|a| a.namespace == target.namespace)
                .map(|a| legacy_state(a, 0))
                .collect()),
        }
    }

    /// The decommission proof read: the project (by id, when given), the namespace, the Apps in
    /// the namespace and the legacy apps of the project targeting it. Only reads; every 404 is
    /// "nothing there", so a fully removed unit gives [`UnitRemains::is_empty`]. Legacy apps are
    /// read only when `legacy` is set (servers without the legacy API answer 404 anyway).
    pub async fn unit_remains(
        &self,
        cluster_id: &str,
        project_id: Option<&str>,
        namespace: &str,
        legacy: bool,
    ) -> Result<UnitRemains, RancherError> {
        let project = match project_id {
            Some(id) => self.get_project(id).await?,
            None => None,
        };
        let ns = self.find_namespace(cluster_id, namespace).await?;
        let target = Target {
            cluster_id: cluster_id.to_owned(),
            namespace: namespace.to_owned(),
        };
        let apps = self.list_apps(&target).await?;
        let legacy_apps = match (legacy, project_id) {
            (true, Some(id)) => self
                .list_legacy_apps(id)
                .await?
                .into_iter()
                .filter(|a| a.namespace == namespace)
                .collect(),
            _ => Vec::new(),
        };
        Ok(UnitRemains {
            project,
            namespace: ns,
            apps,
            legacy_apps,
        })
    }
}
