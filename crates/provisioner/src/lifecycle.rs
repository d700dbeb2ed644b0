//! Plans for an environment that exists: a change planned as a diff from what runs now, and a
//! decommission planned as the list of what goes and what stays.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_domain::plan::{
    AppAction, AppChange, AwsPlan, CapacityFigures, ChangeDiff, ChartPlan, FieldChange,
    KubernetesPlan, PlanInputs, RemovalPlan, ResourceChange, Retained, StageDigests,
};
use berth_domain::{PlanDocument, RequestSpec};
use berth_rancher::{AppsMode, HelmStatus, Target, UninstallOutcome};
use berth_runs::{PlanContext, PlanError, StepContext, StepError, StepOutput, UnitInfo};
use serde_json::json;

use crate::provisioner::{aws_error as aws_step_error, Provisioner};

/// A unified diff of two renderings, line by line (empty when equal).
pub(crate) fn values_diff(before: &str, after: &str) -> Vec<String> {
    if before == after {
        return Vec::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header("deployed", "after the change")
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn overrides_text(spec: &RequestSpec) -> BTreeMap<String, String> {
    spec.overrides
        .0
        .iter()
        .flat_map(|(app, values)| {
            values
                .iter()
                .map(move |(k, v)| (format!("{app}.{k}"), v.to_string()))
        })
        .collect()
}

/// The fields of the spec that differ, as people read them.
pub(crate) fn field_changes(current: &RequestSpec, next: &RequestSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, before: String, after: String| {
        if before != after {
            out.push(FieldChange {
                field: field.to_owned(),
                before,
                after,
            });
        }
    };
    push(
        "size",
        current.size.label().to_owned(),
        next.size.label().to_owned(),
    );
    push(
        "description",
        current.description.as_str().to_owned(),
        next.description.as_str().to_owned(),
    );
    push(
        "owner_contact",
        current.owner_contact.as_str().to_owned(),
        next.owner_contact.as_str().to_owned(),
    );
    let version = |s: &RequestSpec| {
        s.blueprint_version
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    push("blueprint_version", version(current), version(next));
    let (before, after) = (overrides_text(current), overrides_text(next));
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        push(
            &format!("overrides.{k}"),
            before.get(k).cloned().unwrap_or_else(|| "(default)".into()),
            after.get(k).cloned().unwrap_or_else(|| "(default)".into()),
        );
    }
    out
}

impl Provisioner {
    /// What a change does, against what runs now: the spec's fields, the quota, and per app the
    /// chart version and rendered values before and after (secrets redacted on both sides).
    /// "Before" is the current spec rendered with the templates of its blueprint version.
    pub(crate) fn change_diff(
        &self,
        ctx: &PlanContext,
        current: &RequestSpec,
        after: &[ChartPlan],
        cluster_id: &str,
    ) -> Result<ChangeDiff, String> {
        let before_unit = UnitInfo {
            size: current.size.as_str().to_owned(),
            overrides: current.overrides.clone(),
            ..ctx.unit.clone()
        };
        let before_blueprint = current
            .blueprint_version
            .as_ref()
            .and_then(|v| self.templates.blueprint_at(&ctx.blueprint, v.as_str()))
            .or_else(|| self.templates.blueprint(&ctx.blueprint))
            .ok_or_else(|| format!("blueprint {:?} is not installed", ctx.blueprint))?;
        let before: BTreeMap<String, ChartPlan> = self
            .desired(&before_unit, before_blueprint, cluster_id)?
            .charts
            .into_iter()
            .map(|c| (c.app.clone(), c))
            .collect();
        let apps = after
            .iter()
            .map(|c| {
                let deployed = ctx.releases.get(&c.app);
                let rendered_before = before.get(&c.app);
                let chart_before = deployed
                    .map(|d| d.chart_version.clone())
                    .or_else(|| rendered_before.map(|b| b.version.clone()));
                let values_diff =
                    values_diff(rendered_before.map_or("", |b| b.values.as_str()), &c.values);
                let action = match &chart_before {
                    None => AppAction::Install,
                    Some(v) if *v != c.version || !values_diff.is_empty() => AppAction::Upgrade,
                    Some(_) => AppAction::Unchanged,
                };
                AppChange {
                    app: c.app.clone(),
                    action,
                    chart_before,
                    chart_after: Some(c.version.clone()),
                    revision_before: deployed.map(|d| d.revision),
                    values_diff,
                }
            })
            .collect();
        Ok(ChangeDiff {
            fields: field_changes(current, &ctx.spec),
            quota_before: current.size.quota(),
            quota_after: ctx.spec.size.quota(),
            apps,
        })
    }
}

fn rancher_step_error(e: berth_rancher::RancherError) -> StepError {
    crate::provisioner::rancher_error(e, None)
}

/// Helm's timeout for a rollback or an uninstall.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(600);

impl Provisioner {
    /// The unit's cluster, namespace and project as Rancher names them now (read, not made).
    async fn locate(&self, unit: &UnitInfo) -> Result<Located, StepError> {
        let namespace = Self::namespace_of(&unit.company_slug, &unit.unit_slug)?;
        let cluster = self
            .rancher
            .find_cluster(&self.settings.cluster)
            .await
            .map_err(rancher_step_error)?;
        let project = self
            .rancher
            .find_project(&cluster.id, &namespace)
            .await
            .map_err(rancher_step_error)?;
        Ok(Located {
            target: Target {
                cluster_id: cluster.id,
                namespace,
            },
            project_id: project.map(|p| p.id),
        })
    }

    /// Apps & Marketplace, or legacy v3 apps when the worker is set to a legacy catalog.
    pub(crate) fn apps_mode(&self, project_id: Option<&str>) -> Result<AppsMode, StepError> {
        match &self.settings.legacy_catalog {
            None => Ok(AppsMode::Apps),
            Some(catalog) => Ok(AppsMode::Legacy {
                project_id: project_id
                    .ok_or_else(|| {
                        StepError::Permanent(
                            "legacy apps need the unit's Rancher project, which is missing".into(),
                        )
                    })?
                    .to_owned(),
                catalog: catalog.clone(),
            }),
        }
    }

    /// A failed change's rollback: every app whose revision moved in this run goes back to its
    /// revision before the run, in reverse install order. Looks before it acts (the client
    /// reports a release already rolled back as unchanged), so a repeat after a crash does not
    /// roll back twice; an app the run installed is uninstalled.
    pub(crate) async fn rollback(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let blueprint = self.blueprint_of_run(step)?;
        let here = self.locate(&step.unit).await?;
        let mode = self.apps_mode(here.project_id.as_deref())?;
        let mut apps = Vec::new();
        let mut log = Vec::new();
        for app in blueprint.install_order().into_iter().rev() {
            let release = app.name.clone();
            let now = self
                .rancher
                .release_status(&mode, &here.target, &release)
                .await
                .map_err(rancher_step_error)?;
            match (step.releases_before.get(&app.name), now) {
                (Some(before), Some(now))
                    if now.revision != before.revision || now.status != HelmStatus::Deployed =>
                {
                    let outcome = self
                        .rancher
                        .rollback(
                            &mode,
                            &here.target,
                            &release,
                            before.revision,
                            RELEASE_TIMEOUT,
                        )
                        .await
                        .map_err(rancher_step_error)?;
                    log.push(format!(
                        "{release} rolled back to revision {} (now revision {})",
                        before.revision, outcome.revision
                    ));
                    apps.push(json!({
                        "app": app.name, "release": release, "revision": outcome.revision,
                        "chart_version": outcome.chart_version, "rolled_back_to": before.revision,
                    }));
                }
                (None, Some(_)) => {
                    self.rancher
                        .uninstall_release(&mode, &here.target, &release, RELEASE_TIMEOUT)
                        .await
                        .map_err(rancher_step_error)?;
                    log.push(format!("{release} removed: the change had installed it"));
                }
                _ => {}
            }
        }
        if apps.is_empty() {
            log.push("every app was already as before the change".into());
        }
        Ok(StepOutput {
            output: Some(json!({ "apps": apps })),
            log,
        })
    }

    /// Uninstalls one release of the unit (nothing to do when it is gone).
    pub(crate) async fn uninstall_chart(
        &self,
        step: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let app = step
            .app
            .as_deref()
            .ok_or_else(|| StepError::Permanent("uninstall step without an app".into()))?;
        let here = self.locate(&step.unit).await?;
        let outcome = match here.project_id.as_deref() {
            // No project: nothing of the unit's apps can exist in either mode.
            None => UninstallOutcome::NotInstalled,
            Some(project) => {
                let mode = self.apps_mode(Some(project))?;
                self.rancher
                    .uninstall_release(&mode, &here.target, app, RELEASE_TIMEOUT)
                    .await
                    .map_err(rancher_step_error)?
            }
        };
        let what = match outcome {
            UninstallOutcome::Removed => "removed",
            UninstallOutcome::NotInstalled => "already gone",
        };
        Ok(StepOutput {
            output: Some(json!({ "app": app, "release": app, "outcome": what })),
            log: vec![format!("{app} {what}")],
        })
    }

    /// Deletes the unit's namespace, then its Rancher project (each: gone is fine).
    pub(crate) async fn remove_namespace(
        &self,
        step: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let here = self.locate(&step.unit).await?;
        self.rancher
            .delete_namespace(&here.target.cluster_id, &here.target.namespace)
            .await
            .map_err(rancher_step_error)?;
        if let Some(project) = &here.project_id {
            self.rancher
                .delete_project(project)
                .await
                .map_err(rancher_step_error)?;
        }
        Ok(StepOutput {
            output: Some(json!({
                "cluster_id": here.target.cluster_id,
                "namespace": here.target.namespace,
                "project_id": here.project_id,
            })),
            log: vec![format!(
                "namespace {} and its project removed",
                here.target.namespace
            )],
        })
    }

    /// Deletes the unit's stack (its bucket is retained by the template), then schedules its
    /// secrets for deletion after the recovery window. Records whether this attempt deleted the
    /// stack, so a repeat after a crash is seen to delete nothing.
    pub(crate) async fn delete_stack(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let unit = Self::identity(step)?;
        let deletion = self
            .aws
            .delete_unit_stack(&unit)
            .await
            .map_err(aws_step_error)?;
        let secrets = self
            .aws
            .schedule_unit_secret_deletion(&unit, self.settings.secret_recovery_days)
            .await
            .map_err(aws_step_error)?;
        Ok(StepOutput {
            log: vec![
                format!(
                    "stack {} {}",
                    deletion.stack_name,
                    if deletion.deleted_now() {
                        "deleted"
                    } else {
                        "already deleted"
                    }
                ),
                format!(
                    "{} secret(s) scheduled for deletion after {} days",
                    secrets.len(),
                    self.settings.secret_recovery_days
                ),
            ],
            output: Some(json!({ "stack": deletion, "secrets": secrets })),
        })
    }

    /// The proof: no stack by tag, no app, namespace or project of the unit in Rancher, the
    /// unit's secrets only as scheduled for deletion. A failed check fails the step (retried:
    /// removals can take a moment to show).
    pub(crate) async fn prove_removed(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let unit = Self::identity(step)?;
        let aws = self
            .aws
            .prove_unit_removed(&unit)
            .await
            .map_err(aws_step_error)?;
        let namespace = Self::namespace_of(&step.unit.company_slug, &step.unit.unit_slug)?;
        let removed = step.outputs.get(berth_runs::REMOVE_NAMESPACE);
        let cluster = self
            .rancher
            .find_cluster(&self.settings.cluster)
            .await
            .map_err(rancher_step_error)?;
        let project_id = removed.and_then(|o| o["project_id"].as_str());
        let remains = self
            .rancher
            .unit_remains(
                &cluster.id,
                project_id,
                &namespace,
                self.settings.legacy_catalog.is_some(),
            )
            .await
            .map_err(rancher_step_error)?;
        let still_project = self
            .rancher
            .find_project(&cluster.id, &namespace)
            .await
            .map_err(rancher_step_error)?;
        let mut checks: Vec<serde_json::Value> = aws
            .checks
            .iter()
            .map(|c| json!({ "system": "aws", "name": c.name, "passed": c.passed, "detail": c.detail }))
            .collect();
        let apps: Vec<String> = remains
            .apps
            .iter()
            .map(|a| a.release.clone())
            .chain(remains.legacy_apps.iter().map(|a| a.name.clone()))
            .collect();
        checks.push(json!({
            "system": "rancher", "name": "no app", "passed": apps.is_empty(),
            "detail": if apps.is_empty() { format!("no app in namespace {namespace}") } else { format!("still there: {}", apps.join(", ")) },
        }));
        checks.push(json!({
            "system": "rancher", "name": "no namespace", "passed": remains.namespace.is_none(),
            "detail": format!("namespace {namespace} {}", if remains.namespace.is_none() { "not found" } else { "still exists" }),
        }));
        let project_gone = remains.project.is_none() && still_project.is_none();
        checks.push(json!({
            "system": "rancher", "name": "no project", "passed": project_gone,
            "detail": format!("project {namespace} {}", if project_gone { "not found" } else { "still exists" }),
        }));
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c["passed"] == false)
            .map(|c| {
                format!(
                    "{}: {}",
                    c["name"].as_str().unwrap_or("?"),
                    c["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        if !failed.is_empty() {
            return Err(StepError::Transient(format!(
                "not everything of the unit is gone yet: {}",
                failed.join("; ")
            )));
        }
        let retained: Vec<serde_json::Value> = aws
            .retained
            .iter()
            .map(
                |r| json!({ "name": r.logical_id, "resource_type": r.resource_type, "why": r.why }),
            )
            .chain(aws.secrets.iter().map(|s| {
                json!({ "name": s.name, "resource_type": "AWS::SecretsManager::Secret",
                        "why": format!("scheduled for deletion on {}", s.deletion_date) })
            }))
            .collect();
        Ok(StepOutput {
            log: vec![format!(
                "{} checks passed: nothing of the unit remains",
                checks.len()
            )],
            output: Some(json!({ "checks": checks, "retained": retained })),
        })
    }
}

/// Where a unit is in Rancher.
struct Located {
    target: Target,
    project_id: Option<String>,
}

impl Provisioner {
    /// A decommission's plan: the releases in removal order, the namespace and project, the
    /// stack's resources its deletion removes, and what stays (the template's retained
    /// resources, the secrets for their recovery window). Nothing is rendered or previewed:
    /// a removal depends on what exists, not on the templates.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn plan_removal(
        &self,
        ctx: &PlanContext,
        blueprint: &berth_blueprint::Blueprint,
        identity: &berth_aws::UnitIdentity,
        cluster: &berth_rancher::Cluster,
        namespace: &str,
        project: Option<berth_rancher::Project>,
        existing_ns: Option<berth_rancher::Namespace>,
    ) -> Result<PlanDocument, PlanError> {
        let aws_error = |e: berth_aws::AwsError| {
            if e.is_retryable() {
                PlanError::Transient(format!("AWS: {e}"))
            } else {
                PlanError::Invalid(format!("AWS: {e}"))
            }
        };
        let retained_spec = self.aws.retained_resources().map_err(aws_error)?;
        let stack = self
            .aws
            .find_unit_stack(identity)
            .await
            .map_err(aws_error)?;
        // The stack as it is named (one from before `berth-<company>--<unit>` keeps its name).
        let stack_name = stack
            .as_ref()
            .map_or_else(|| identity.stack_name(), |s| s.stack.stack_name.clone());
        let kept = |id: &str| retained_spec.iter().any(|r| r.logical_id == id);
        let resources: Vec<ResourceChange> = stack
            .as_ref()
            .map(|s| {
                s.resources
                    .iter()
                    .filter(|r| !kept(&r.logical_id))
                    .map(|r| ResourceChange {
                        action: "remove".into(),
                        logical_id: r.logical_id.clone(),
                        resource_type: r.resource_type.clone(),
                        physical_id: r.physical_id.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let days = self.settings.secret_recovery_days;
        let mut retained: Vec<Retained> = retained_spec
            .iter()
            .filter(|r| r.resource_type != "AWS::SecretsManager::Secret")
            .map(|r| Retained {
                name: r.logical_id.clone(),
                resource_type: r.resource_type.clone(),
                why: r.why.clone(),
            })
            .collect();
        retained.push(Retained {
            name: "the unit's secrets".into(),
            resource_type: "AWS::SecretsManager::Secret".into(),
            why: format!("scheduled for deletion, recoverable for {days} days"),
        });
        let size = ctx.spec.size;
        let setup_digest = self.setup_digest(blueprint);
        let s = &self.settings;
        Ok(PlanDocument {
            request_id: ctx.request_id,
            inputs: PlanInputs {
                spec: ctx.spec.clone(),
                blueprint: blueprint.name().to_owned(),
                blueprint_version: blueprint.version().to_owned(),
                files: BTreeMap::new(),
                cloudformation_template: String::new(),
                registry_server: s.registry_server.clone(),
                domain: s.domain.clone(),
                cluster: s.cluster.clone(),
                setup_digest,
            },
            aws: AwsPlan {
                stack_name: stack_name.clone(),
                kind: if stack.is_some() { "delete" } else { "none" }.into(),
                changes: resources.clone(),
                parameters: Vec::new(),
            },
            kubernetes: KubernetesPlan {
                cluster: cluster.name.clone(),
                cluster_id: cluster.id.clone(),
                project: namespace.to_owned(),
                existing_project: project.map(|p| p.id),
                namespace: namespace.to_owned(),
                namespace_exists: existing_ns.is_some(),
                quota: size.quota(),
                limit_range: size.limit_range(),
            },
            charts: Vec::new(),
            capacity: CapacityFigures {
                allocatable_cpu_millis: 0,
                allocatable_memory_mib: 0,
                committed: ctx.committed,
                requested: berth_domain::Quota::default(),
            },
            digests: StageDigests::default(),
            change: None,
            removal: Some(RemovalPlan {
                apps: blueprint
                    .install_order()
                    .into_iter()
                    .rev()
                    .map(|a| a.name.clone())
                    .collect(),
                namespace: namespace.to_owned(),
                project: namespace.to_owned(),
                stack_name,
                resources,
                retained,
                secret_recovery_days: days,
            }),
        })
    }
}

#[cfg(test)]
mod tests;
