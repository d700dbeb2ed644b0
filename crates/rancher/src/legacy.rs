//! Legacy mode for old Rancher servers (contract §5): v3 "apps" installed from a catalog with a
//! `catalog://` external id (Rancher 2.0–2.4, and 2.5–2.10 with the `legacy` flag on).

use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::apps::{ChartAction, ChartOutcome, ChartSpec, UninstallOutcome};
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

#[derive(Debug, Clone)]
struct LegacyApp {
    self_link: String,
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
        Self {
            self_link: link.strip_prefix(base).unwrap_or(&link).to_owned(),
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

    /// Installs or upgrades a chart as a legacy v3 app in `namespace` (which must already be in
    /// the project), then waits until it is `active` with `Installed=True` and `Deployed=True`.
    /// Values are sent as `valuesYaml` (JSON text, which is YAML) with no `answers`; an upgrade
    /// replaces them entirely. Revisions are not numbered in v3: the outcome's revision is 0.
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
                    revision: 0,
                    chart_version: spec.version.clone(),
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
                    return Ok(ChartOutcome {
                        action,
                        revision: 0,
                        chart_version: spec.version.clone(),
                    })
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
