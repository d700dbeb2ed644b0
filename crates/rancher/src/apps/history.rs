//! A release's Helm history, and rolling back to one of its revisions.

use std::time::Duration;

use serde_json::{json, Value};

use super::{ChartOutcome, ChartSpec, HelmStatus, Target};
use crate::client::RancherClient;
use crate::error::RancherError;
use crate::wire::{encode_component, string_at};

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

impl RancherClient {
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
}
