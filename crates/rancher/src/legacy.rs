//! Legacy mode for old Rancher servers (contract §5): v3 "apps" installed from a catalog with a
//! `catalog://` external id (Rancher 2.0–2.4, and 2.5–2.10 with the `legacy` flag on).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::apps::{
    ChartAction, ChartOutcome, ChartSpec, HelmStatus, ReleaseRevision, UninstallOutcome,
};
use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

/// Where a legacy catalog is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogScope {
    /// A global catalog, e.g. `library`.
    Global,
    /// A cluster catalog. `qualified_with` = `Some(cluster_id)` gives the `c-xxxxx/name` form;
    /// `None` the bare name the seed used (`catalog=stable&type=clusterCatalog`).
    Cluster { qualified_with: Option<String> },
    /// A project catalog (`p-xxxxx/name`, `type=projectCatalog`).
    Project { project_short_id: String },
}

/// A legacy catalog by name and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyCatalog {
    pub name: String,
    pub scope: CatalogScope,
}

impl LegacyCatalog {
    /// The `externalId` of a template version in this catalog, e.g.
    /// `catalog://?catalog=stable&type=clusterCatalog&template=influxdb&version=4.3.2`.
    pub fn external_id(&self, template: &str, version: &str) -> String {
        let (catalog, kind) = match &self.scope {
            CatalogScope::Global => (self.name.clone(), None),
            CatalogScope::Cluster {
                qualified_with: None,
            } => (self.name.clone(), Some("clusterCatalog")),
            CatalogScope::Cluster {
                qualified_with: Some(cluster),
            } => (format!("{cluster}/{}", self.name), Some("clusterCatalog")),
            CatalogScope::Project { project_short_id } => (
                format!("{project_short_id}/{}", self.name),
                Some("projectCatalog"),
            ),
        };
        let mut id = format!("catalog://?catalog={catalog}");
        if let Some(kind) = kind {
            id.push_str(&format!("&type={kind}"));
        }
        id.push_str(&format!("&template={template}&version={version}"));
        id
    }
}

/// `catalog://?…&template=T&version=V` → (T, V).
fn template_and_version(external_id: &str) -> (String, String) {
    let query = external_id.split_once('?').map_or("", |(_, q)| q);
    let get = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_default()
            .to_owned()
    };
    (get("template"), get("version"))
}

/// `valuesYaml` back to values: Berth writes JSON (which is YAML); anything else is kept as text.
fn values_of(values_yaml: &str) -> Value {
    if values_yaml.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(values_yaml).unwrap_or_else(|_| Value::String(values_yaml.to_owned()))
}

/// A legacy v3 app as a proof read lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAppStatus {
    pub name: String,
    pub namespace: String,
    pub state: String,
    pub external_id: String,
    pub chart: String,
    pub chart_version: String,
}

#[derive(Debug, Clone)]
struct LegacyApp {
    self_link: String,
    name: String,
    namespace: String,
    /// The applied apprevision's name (`apprevision-xxxxx`; Norman shows `p-yyyyy:<name>`).
    app_revision: String,
    answers: Value,
    revision_link: String,
    external_id: String,
    values_yaml: String,
    answers_empty: bool,
    state: String,
    transitioning: String,
    message: String,
    installed: Option<String>,
    deployed: Option<String>,
}

impl LegacyApp {
    fn from_json(v: &Value, base: &str) -> Self {
        let cond = |t: &str| {
            v["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == t)
                .map(|c| string_at(c, &["status"]))
        };
        let link = string_at(v, &["links", "self"]);
        let revision_link = string_at(v, &["links", "revision"]);
        let app_revision = string_at(v, &["appRevisionId"]);
        Self {
            self_link: link.strip_prefix(base).unwrap_or(&link).to_owned(),
            name: string_at(v, &["name"]),
            namespace: string_at(v, &["targetNamespace"]),
            app_revision: app_revision
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
            answers: match &v["answers"] {
                Value::Null => json!({}),
                a => a.clone(),
            },
            revision_link: revision_link
                .strip_prefix(base)
                .unwrap_or(&revision_link)
                .to_owned(),
            external_id: string_at(v, &["externalId"]),
            values_yaml: string_at(v, &["valuesYaml"]),
            answers_empty: v["answers"].as_object().is_none_or(|m| m.is_empty()),
            state: string_at(v, &["state"]),
            transitioning: string_at(v, &["transitioning"]),
            message: string_at(v, &["transitioningMessage"]),
            installed: cond("Installed"),
            deployed: cond("Deployed"),
        }
    }

    /// `active` alone is not enough: right after create an app can read `active` before any
    /// work started, so `Installed=True` (and `Deployed=True`) must be there too.
    fn ready(&self) -> bool {
        self.state == "active"
            && self.installed.as_deref() == Some("True")
            && self.deployed.as_deref() == Some("True")
    }

    fn failed(&self) -> bool {
        self.installed.as_deref() == Some("False") || self.transitioning == "error"
    }

    fn status(&self) -> LegacyAppStatus {
        let (chart, chart_version) = template_and_version(&self.external_id);
        LegacyAppStatus {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            state: self.state.clone(),
            external_id: self.external_id.clone(),
            chart,
            chart_version,
        }
    }
}

impl RancherClient {
    async fn find_legacy_app(
        &self,
        project_id: &str,
        release: &str,
    ) -> Result<Option<LegacyApp>, RancherError> {
        let path = format!(
            "/v3/projects/{}/apps?name={}",
            encode_component(project_id),
            encode_component(release)
        );
        let v = self.get(&path).await?;
        Ok(v["data"]
            .as_array()
            .and_then(|d| d.first())
            .map(|a| LegacyApp::from_json(a, self.base_url())))
    }

    /// Every legacy app of the project; none when the project is gone (or the server has no
    /// legacy apps API): a 404 is an empty list, for proof reads after a decommission.
    pub async fn list_legacy_apps(
        &self,
        project_id: &str,
    ) -> Result<Vec<LegacyAppStatus>, RancherError> {
        let path = format!("/v3/projects/{}/apps", encode_component(project_id));
        let Some(v) = self.get_opt(&path).await? else {
            return Ok(Vec::new());
        };
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| LegacyApp::from_json(a, self.base_url()).status())
            .collect())
    }

    /// The apprevisions of a legacy app (its `revision` link), oldest first (by `createdTS`),
    /// numbered from 1 in that order: v3 has no revision numbers of its own, and Rancher adds
    /// one apprevision per successful install, upgrade or rollback. The applied one reads
    /// `deployed`, the others `superseded`. Empty when there is no such app.
    pub async fn legacy_history(
        &self,
        project_id: &str,
        release: &str,
    ) -> Result<Vec<ReleaseRevision>, RancherError> {
        match self.find_legacy_app(project_id, release).await? {
            Some(app) => self.legacy_revisions(&app).await,
            None => Ok(Vec::new()),
        }
    }

    async fn legacy_revisions(
        &self,
        app: &LegacyApp,
    ) -> Result<Vec<ReleaseRevision>, RancherError> {
        let path = if app.revision_link.is_empty() {
            format!("{}/revision", app.self_link)
        } else {
            app.revision_link.clone()
        };
        let Some(v) = self.get_opt(&path).await? else {
            return Ok(Vec::new());
        };
        let mut raw: Vec<&Value> = v["data"].as_array().into_iter().flatten().collect();
        raw.sort_by_key(|r| {
            (
                r["createdTS"].as_u64().unwrap_or(0),
                string_at(r, &["created"]),
            )
        });
        Ok(raw
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let name = string_at(r, &["name"]);
                let name = if name.is_empty() {
                    string_at(r, &["id"])
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                } else {
                    name
                };
                let external_id = string_at(r, &["status", "externalId"]);
                let (chart, chart_version) = template_and_version(&external_id);
                ReleaseRevision {
                    revision: i as u64 + 1,
                    chart,
                    chart_version,
                    values: values_of(&string_at(r, &["status", "valuesYaml"])),
                    status: if name == app.app_revision {
                        HelmStatus::Deployed
                    } else {
                        HelmStatus::Superseded
                    },
                    description: String::new(),
                    repo: None,
                    legacy_revision_id: Some(name),
                }
            })
            .collect())
    }

    /// The position (1-based) of the app's applied apprevision, 0 when unknown.
    async fn legacy_revision_number(&self, app: &LegacyApp) -> Result<u64, RancherError> {
        let revisions = self.legacy_revisions(app).await?;
        Ok(revisions
            .iter()
            .find(|r| r.legacy_revision_id.as_deref() == Some(app.app_revision.as_str()))
            .map_or(revisions.len() as u64, |r| r.revision))
    }

    /// Rolls a legacy app back to its `to_revision`-th apprevision (see
    /// [`legacy_history`](Self::legacy_history)): `POST <app>?action=rollback
    /// {"revisionId": "<apprevision name>", "forceUpgrade": false}` → 204, then waits until it
    /// is `active` with `Installed=True`/`Deployed=True` again.
    ///
    /// Idempotent by looking first: when the app already runs that revision's template version,
    /// answers and values and is ready, nothing is sent (`Unchanged`), so a repeated call after
    /// a crash does not roll back twice; when it is already moving there, it waits.
    #[tracing::instrument(skip_all, fields(project_id = %project_id, release = %release, to_revision))]
    pub async fn rollback_legacy(
        &self,
        project_id: &str,
        release: &str,
        to_revision: u64,
        timeout: Duration,
    ) -> Result<ChartOutcome, RancherError> {
        let Some(app) = self.find_legacy_app(project_id, release).await? else {
            return Err(RancherError::RevisionNotFound {
                release: release.to_owned(),
                revision: to_revision.to_string(),
                available: Vec::new(),
            });
        };
        let revisions = self.legacy_revisions(&app).await?;
        let Some(goal) = revisions
            .iter()
            .find(|r| r.revision == to_revision)
            .cloned()
        else {
            return Err(RancherError::RevisionNotFound {
                release: release.to_owned(),
                revision: to_revision.to_string(),
                available: revisions.iter().map(|r| r.revision.to_string()).collect(),
            });
        };
        let goal_id = goal.legacy_revision_id.clone().unwrap_or_default();
        // The goal's content, from the apprevision itself.
        let goal_raw = self
            .get(&format!(
                "/v3/project/{}/apprevisions/{}",
                encode_component(project_id),
                encode_component(&format!(
                    "{}:{goal_id}",
                    project_id.split(':').nth(1).unwrap_or(project_id)
                ))
            ))
            .await?;
        let goal_external = string_at(&goal_raw, &["status", "externalId"]);
        let goal_values = string_at(&goal_raw, &["status", "valuesYaml"]);
        let goal_answers = match &goal_raw["status"]["answers"] {
            Value::Null => json!({}),
            a => a.clone(),
        };
        let at_goal = |a: &LegacyApp| {
            a.external_id == goal_external
                && a.values_yaml == goal_values
                && a.answers == goal_answers
        };
        let previous = self.legacy_revision_number(&app).await?;
        let action = if at_goal(&app) && app.ready() {
            return Ok(ChartOutcome {
                action: ChartAction::Unchanged,
                revision: previous,
                chart_version: goal.chart_version,
                previous_revision: None,
            });
        } else if at_goal(&app) && !app.failed() {
            // A rollback (ours, before a crash) is under way: wait for it.
            ChartAction::RolledBack
        } else {
            tracing::info!(revision = %goal_id, "rolling back legacy app");
            let body = json!({"revisionId": goal_id, "forceUpgrade": false});
            self.send_json(
                Method::POST,
                &format!("{}?action=rollback", app.self_link),
                Some(&body),
                Idempotency::Safe,
            )
            .await?;
            ChartAction::RolledBack
        };
        let budget = timeout + self.config().operation_grace;
        let deadline = Instant::now() + budget;
        loop {
            match self.find_legacy_app(project_id, release).await? {
                Some(a) if a.failed() => {
                    return Err(RancherError::OperationFailed {
                        release: release.to_owned(),
                        action: "legacy app rollback".into(),
                        operation: a.self_link,
                        message: a.message,
                    })
                }
                Some(a) if a.ready() && at_goal(&a) => {
                    return Ok(ChartOutcome {
                        action,
                        revision: self.legacy_revision_number(&a).await?,
                        chart_version: goal.chart_version,
                        previous_revision: Some(previous),
                    })
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("legacy app {release} to roll back to revision {to_revision}"),
                    waited: budget,
                });
            }
            tokio::time::sleep(self.config().poll_interval).await;
        }
    }

    /// Installs or upgrades a chart as a legacy v3 app in `namespace` (which must already be in
    /// the project), then waits until it is `active` with `Installed=True` and `Deployed=True`.
    /// Values are sent as `valuesYaml` (JSON text, which is YAML) with no `answers`; an upgrade
    /// replaces them entirely. Revisions are not numbered in v3: the outcome's revision is the
    /// applied apprevision's position in [`legacy_history`](Self::legacy_history).
    #[tracing::instrument(skip_all, fields(project_id = %project_id, namespace = %namespace, release = %spec.release))]
    pub async fn deploy_chart_legacy(
        &self,
        project_id: &str,
        namespace: &str,
        catalog: &LegacyCatalog,
        spec: &ChartSpec,
    ) -> Result<ChartOutcome, RancherError> {
        let external_id = catalog.external_id(&spec.chart, &spec.version);
        let values_yaml =
            serde_json::to_string(&spec.values).map_err(|e| RancherError::Decode {
                path: "valuesYaml".into(),
                message: e.to_string(),
            })?;
        let budget = spec.timeout + self.config().operation_grace;
        let deadline = Instant::now() + budget;
        let desired = |a: &LegacyApp| {
            a.external_id == external_id && a.values_yaml == values_yaml && a.answers_empty
        };

        let existing = self.find_legacy_app(project_id, &spec.release).await?;
        let action = match &existing {
            Some(a) if desired(a) && a.ready() => {
                return Ok(ChartOutcome {
                    action: ChartAction::Unchanged,
                    revision: self.legacy_revision_number(a).await?,
                    chart_version: spec.version.clone(),
                    previous_revision: None,
                })
            }
            // Already moving towards the desired state: just wait.
            Some(a) if desired(a) && !a.failed() => ChartAction::Upgraded,
            Some(a) => {
                tracing::info!("upgrading legacy app");
                let body =
                    json!({"externalId": external_id, "answers": {}, "valuesYaml": values_yaml});
                self.send_json(
                    Method::POST,
                    &format!("{}?action=upgrade", a.self_link),
                    Some(&body),
                    Idempotency::Safe,
                )
                .await?;
                ChartAction::Upgraded
            }
            None => {
                tracing::info!("creating legacy app");
                let body = json!({
                    "type": "app", "name": spec.release, "projectId": project_id, "targetNamespace": namespace,
                    "externalId": external_id, "answers": {}, "valuesYaml": values_yaml,
                    "timeout": spec.timeout.as_secs().max(1), "wait": spec.wait,
                });
                let path = format!("/v3/projects/{}/apps", encode_component(project_id));
                match self
                    .send_json(Method::POST, &path, Some(&body), Idempotency::Unsafe)
                    .await
                {
                    Ok(_) => {}
                    // Created by an earlier attempt whose answer was lost: wait for it below.
                    Err(e) if e.status() == Some(409) => {}
                    Err(e) => return Err(e),
                }
                ChartAction::Installed
            }
        };
        loop {
            let app = self.find_legacy_app(project_id, &spec.release).await?;
            match app {
                Some(a) if a.failed() => {
                    return Err(RancherError::OperationFailed {
                        release: spec.release.clone(),
                        action: "legacy app install/upgrade".into(),
                        operation: a.self_link,
                        message: a.message,
                    })
                }
                Some(a) if a.ready() && desired(&a) => {
                    let revisions = self.legacy_revisions(&a).await?;
                    let number = |id: &str| {
                        revisions
                            .iter()
                            .find(|r| r.legacy_revision_id.as_deref() == Some(id))
                            .map(|r| r.revision)
                    };
                    return Ok(ChartOutcome {
                        action,
                        revision: number(&a.app_revision).unwrap_or(revisions.len() as u64),
                        chart_version: spec.version.clone(),
                        previous_revision: match (&action, &existing) {
                            (ChartAction::Upgraded, Some(before)) => number(&before.app_revision),
                            _ => None,
                        },
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("legacy app {} to become active", spec.release),
                    waited: budget,
                });
            }
            tokio::time::sleep(self.config().poll_interval).await;
        }
    }

    /// Deletes a legacy app and waits until it is gone.
    pub async fn uninstall_legacy(
        &self,
        project_id: &str,
        release: &str,
    ) -> Result<UninstallOutcome, RancherError> {
        let Some(app) = self.find_legacy_app(project_id, release).await? else {
            return Ok(UninstallOutcome::NotInstalled);
        };
        match self
            .send_json(Method::DELETE, &app.self_link, None, Idempotency::Safe)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(UninstallOutcome::NotInstalled),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + self.config().activation_timeout;
        while self.find_legacy_app(project_id, release).await?.is_some() {
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!("legacy app {release} to be removed"),
                    waited: self.config().activation_timeout,
                });
            }
            tokio::time::sleep(self.config().poll_interval).await;
        }
        Ok(UninstallOutcome::Removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_id_forms() {
        let seed = LegacyCatalog {
            name: "stable".into(),
            scope: CatalogScope::Cluster {
                qualified_with: None,
            },
        };
        assert_eq!(
            seed.external_id("influxdb", "4.3.2"),
            "catalog://?catalog=stable&type=clusterCatalog&template=influxdb&version=4.3.2"
        );
        let global = LegacyCatalog {
            name: "library".into(),
            scope: CatalogScope::Global,
        };
        assert_eq!(
            global.external_id("x", "1"),
            "catalog://?catalog=library&template=x&version=1"
        );
        let cluster = LegacyCatalog {
            name: "stable".into(),
            scope: CatalogScope::Cluster {
                qualified_with: Some("c-abcde".into()),
            },
        };
        assert!(cluster
            .external_id("x", "1")
            .starts_with("catalog://?catalog=c-abcde/stable&type=clusterCatalog"));
        let project = LegacyCatalog {
            name: "mine".into(),
            scope: CatalogScope::Project {
                project_short_id: "p-xyz".into(),
            },
        };
        assert!(project
            .external_id("x", "1")
            .contains("catalog=p-xyz/mine&type=projectCatalog"));
    }
}
