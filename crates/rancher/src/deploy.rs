//! The "deploy blueprint" stage: prepare the unit's project and namespace, then install every app
//! of a rendered blueprint in dependency order, each after the apps it depends on are ready.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_blueprint::{Blueprint, RenderMode, RenderedApp};
use serde_json::Value;

use crate::apps::{ChartAction, ChartSpec, Target};
use crate::client::RancherClient;
use crate::error::RancherError;
use crate::legacy::{CatalogScope, LegacyCatalog};

/// Where a unit's environment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Cluster name (or id) as Rancher knows it.
    pub cluster: String,
    /// Project name; created when missing.
    pub project: String,
    pub project_description: String,
    /// The unit's namespace; created in the project when missing.
    pub namespace: String,
}

/// A prepared target: ids resolved, project and namespace active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedTarget {
    pub target: Target,
    pub cluster_name: String,
    pub project_id: String,
}

/// Resolves the cluster, ensures the project and the namespace (look before create), and checks
/// the token on the way. Idempotent.
#[tracing::instrument(skip_all, fields(cluster = %spec.cluster, namespace = %spec.namespace))]
pub async fn prepare_target(
    client: &RancherClient,
    spec: &TargetSpec,
) -> Result<PreparedTarget, RancherError> {
    let cluster = client.find_cluster(&spec.cluster).await?;
    let project = client
        .ensure_project(&cluster.id, &spec.project, &spec.project_description)
        .await?;
    client
        .ensure_namespace(&cluster.id, &project.id, &spec.namespace)
        .await?;
    Ok(PreparedTarget {
        target: Target {
            cluster_id: cluster.id,
            namespace: spec.namespace.clone(),
        },
        cluster_name: cluster.name,
        project_id: project.id,
    })
}

/// One app of a deployment plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedApp {
    pub name: String,
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub values: Value,
    pub depends_on: Vec<String>,
    pub wait: bool,
    pub timeout: Duration,
}

/// The apps to deploy, in a valid dependency order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPlan {
    pub blueprint: String,
    pub blueprint_version: String,
    pub apps: Vec<PlannedApp>,
}

/// Why a plan could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("preview-rendered values (secrets redacted) cannot be deployed; render with RenderMode::Real")]
    PreviewValues,
    #[error("no rendered values for app {0:?} of blueprint {1:?}")]
    MissingValues(String, String),
}

impl DeployPlan {
    /// Pairs a blueprint with its rendered values (from
    /// [`berth_blueprint::ValuesRenderer::render_blueprint`] in [`RenderMode::Real`]).
    pub fn new(blueprint: &Blueprint, rendered: &[RenderedApp]) -> Result<Self, PlanError> {
        let by_name: BTreeMap<&str, &RenderedApp> =
            rendered.iter().map(|r| (r.app.name.as_str(), r)).collect();
        let mut apps = Vec::new();
        for app in blueprint.install_order() {
            let r = by_name.get(app.name.as_str()).ok_or_else(|| {
                PlanError::MissingValues(app.name.clone(), blueprint.name().to_owned())
            })?;
            if r.values.mode != RenderMode::Real {
                return Err(PlanError::PreviewValues);
            }
            apps.push(PlannedApp {
                name: app.name.clone(),
                repo: app.chart.repo.clone(),
                chart: app.chart.chart.clone(),
                version: app.chart.version.clone(),
                values: r.values.values.clone(),
                depends_on: app.depends_on.clone(),
                wait: app.readiness.condition.wait(),
                timeout: app.readiness.timeout,
            });
        }
        Ok(Self {
            blueprint: blueprint.name().to_owned(),
            blueprint_version: blueprint.version().to_owned(),
            apps,
        })
    }
}

/// A chart of a plan that the cluster's repos do not offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingChart {
    pub app: String,
    pub repo: String,
    pub chart: String,
    pub version: String,
    /// Versions the repo does offer, newest first (empty when the chart is unknown).
    pub available: Vec<String>,
}

/// Pre-flight check (before approval or deployment): every chart version of the plan exists in
/// its cluster repo. Returns the missing ones; an empty list means the plan can be installed.
#[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, blueprint = %plan.blueprint))]
pub async fn verify_charts(
    client: &RancherClient,
    cluster_id: &str,
    plan: &DeployPlan,
) -> Result<Vec<MissingChart>, RancherError> {
    let mut index: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    for app in &plan.apps {
        let key = (app.repo.as_str(), app.chart.as_str());
        if let std::collections::btree_map::Entry::Vacant(slot) = index.entry(key) {
            client.wait_repo_ready(cluster_id, &app.repo).await?;
            let versions = client
                .chart_versions(cluster_id, &app.repo, &app.chart)
                .await?;
            slot.insert(versions);
        }
        let available = &index[&key];
        if !available.contains(&app.version) {
            missing.push(MissingChart {
                app: app.name.clone(),
                repo: app.repo.clone(),
                chart: app.chart.clone(),
                version: app.version.clone(),
                available: available.clone(),
            });
        }
    }
    Ok(missing)
}

/// What happened to one app.
#[derive(Debug, Clone, PartialEq)]
pub enum AppOutcome {
    Unchanged {
        revision: u64,
    },
    Installed {
        revision: u64,
    },
    Upgraded {
        revision: u64,
    },
    /// The app failed; `message` is Rancher's or Helm's explanation.
    Failed {
        message: String,
        transient: bool,
    },
    /// Not started because a dependency did not become ready.
    Skipped {
        blocked_by: String,
    },
}

impl AppOutcome {
    pub fn is_ready(&self) -> bool {
        matches!(
            self,
            AppOutcome::Unchanged { .. }
                | AppOutcome::Installed { .. }
                | AppOutcome::Upgraded { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppReport {
    pub name: String,
    pub chart: String,
    pub version: String,
    pub outcome: AppOutcome,
}

/// The result of a deployment: one entry per app, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployReport {
    pub blueprint: String,
    pub blueprint_version: String,
    pub apps: Vec<AppReport>,
}

impl DeployReport {
    pub fn succeeded(&self) -> bool {
        self.apps.iter().all(|a| a.outcome.is_ready())
    }

    /// The first app that failed, with its message.
    pub fn failure(&self) -> Option<(&str, &str)> {
        self.apps.iter().find_map(|a| match &a.outcome {
            AppOutcome::Failed { message, .. } => Some((a.name.as_str(), message.as_str())),
            _ => None,
        })
    }
}

/// Progress events, for the engine to persist and the UI to stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployEvent {
    AppStarted {
        app: String,
        chart: String,
        version: String,
    },
    AppFinished {
        app: String,
        outcome: AppOutcome,
    },
}

/// Deploys the plan into a prepared target through Apps & Marketplace, in order. An app starts
/// only when all its dependencies are ready; when one fails, its dependents (direct or not) are
/// skipped and the report names the failing app and Rancher's/Helm's message. Independent apps
/// still run.
#[tracing::instrument(skip_all, fields(blueprint = %plan.blueprint, namespace = %target.namespace))]
pub async fn deploy_blueprint(
    client: &RancherClient,
    target: &Target,
    plan: &DeployPlan,
    on_event: impl FnMut(&DeployEvent) + Send,
) -> DeployReport {
    run(client, target, &Mode::AppsV1, plan, on_event).await
}

/// The same through the legacy v3 apps API (old servers): every app's repo is taken as a legacy
/// catalog of `scope`, and the namespace must be in `prepared.project_id`.
#[tracing::instrument(skip_all, fields(blueprint = %plan.blueprint, namespace = %prepared.target.namespace))]
pub async fn deploy_blueprint_legacy(
    client: &RancherClient,
    prepared: &PreparedTarget,
    scope: CatalogScope,
    plan: &DeployPlan,
    on_event: impl FnMut(&DeployEvent) + Send,
) -> DeployReport {
    let mode = Mode::Legacy {
        project_id: prepared.project_id.clone(),
        scope,
    };
    run(client, &prepared.target, &mode, plan, on_event).await
}

enum Mode {
    AppsV1,
    Legacy {
        project_id: String,
        scope: CatalogScope,
    },
}

async fn run(
    client: &RancherClient,
    target: &Target,
    mode: &Mode,
    plan: &DeployPlan,
    mut on_event: impl FnMut(&DeployEvent) + Send,
) -> DeployReport {
    let mut ready: BTreeMap<&str, bool> = BTreeMap::new();
    let mut reports = Vec::with_capacity(plan.apps.len());
    let mut repos_checked: BTreeMap<&str, Result<(), String>> = BTreeMap::new();
    for app in &plan.apps {
        let blocked = app
            .depends_on
            .iter()
            .find(|d| !ready.get(d.as_str()).copied().unwrap_or(false));
        let outcome = if let Some(dep) = blocked {
            AppOutcome::Skipped {
                blocked_by: dep.clone(),
            }
        } else {
            on_event(&DeployEvent::AppStarted {
                app: app.name.clone(),
                chart: app.chart.clone(),
                version: app.version.clone(),
            });
            let repo_ok = match (mode, repos_checked.get(app.repo.as_str())) {
                (Mode::Legacy { .. }, _) => Ok(()),
                (Mode::AppsV1, Some(r)) => r.clone(),
                (Mode::AppsV1, None) => {
                    let r = client
                        .wait_repo_ready(&target.cluster_id, &app.repo)
                        .await
                        .map_err(|e| e.to_string());
                    repos_checked.insert(&app.repo, r.clone());
                    r
                }
            };
            match repo_ok {
                Err(message) => AppOutcome::Failed {
                    message,
                    transient: false,
                },
                Ok(()) => {
                    let spec = ChartSpec {
                        release: app.name.clone(),
                        repo: app.repo.clone(),
                        chart: app.chart.clone(),
                        version: app.version.clone(),
                        values: app.values.clone(),
                        wait: app.wait,
                        timeout: app.timeout,
                    };
                    let result = match mode {
                        Mode::AppsV1 => client.deploy_chart(target, &spec).await,
                        Mode::Legacy { project_id, scope } => {
                            let catalog = LegacyCatalog {
                                name: app.repo.clone(),
                                scope: scope.clone(),
                            };
                            client
                                .deploy_chart_legacy(project_id, &target.namespace, &catalog, &spec)
                                .await
                        }
                    };
                    match result {
                        Ok(o) => match o.action {
                            ChartAction::Unchanged => AppOutcome::Unchanged {
                                revision: o.revision,
                            },
                            ChartAction::Installed => AppOutcome::Installed {
                                revision: o.revision,
                            },
                            ChartAction::Upgraded | ChartAction::RolledBack => {
                                AppOutcome::Upgraded {
                                    revision: o.revision,
                                }
                            }
                        },
                        Err(e) => {
                            tracing::warn!(app = %app.name, error = %e, "app failed");
                            AppOutcome::Failed {
                                message: e.to_string(),
                                transient: e.is_transient(),
                            }
                        }
                    }
                }
            }
        };
        ready.insert(&app.name, outcome.is_ready());
        on_event(&DeployEvent::AppFinished {
            app: app.name.clone(),
            outcome: outcome.clone(),
        });
        reports.push(AppReport {
            name: app.name.clone(),
            chart: app.chart.clone(),
            version: app.version.clone(),
            outcome,
        });
    }
    DeployReport {
        blueprint: plan.blueprint.clone(),
        blueprint_version: plan.blueprint_version.clone(),
        apps: reports,
    }
}
