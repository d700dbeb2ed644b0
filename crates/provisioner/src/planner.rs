//! Plans (berth-runs' [`Planner`]): what approving a request will build, computed against the
//! live systems without changing anything, and the fingerprints the steps recompute before they
//! act so that a run executes only what was approved.

use std::collections::BTreeMap;

use berth_aws::PreviewKind;
use berth_blueprint::{Blueprint, ClusterFacts, RenderContext, RenderMode, Secrets, UnitInputs};
use berth_domain::plan::{
    AwsPlan, CapacityFigures, ChartPlan, KubernetesPlan, PlanInputs, ResourceChange, StageDigests,
};
use berth_domain::{AppOverrides, PlanDocument, RequestKind, Size};
use berth_runs::{PlanContext, PlanError, Planner, StepContext, StepError, UnitInfo};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::provisioner::Provisioner;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of a value's JSON (struct fields in declaration order, maps sorted).
fn digest_of(value: &impl Serialize) -> String {
    sha256_hex(&serde_json::to_vec(value).unwrap_or_default())
}

/// What every stage will make, as fingerprints, plus the rendered previews they cover.
pub(crate) struct Desired {
    pub digests: StageDigests,
    pub setup_digest: String,
    pub charts: Vec<ChartPlan>,
}

fn size_of(unit: &UnitInfo) -> Result<Size, String> {
    unit.size.parse::<Size>()
}

/// The domain's overrides as the blueprint renders them (the same JSON object).
pub(crate) fn blueprint_overrides(o: &AppOverrides) -> Result<berth_blueprint::Overrides, String> {
    serde_json::to_value(o)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("overrides: {e}"))
}

impl Provisioner {
    /// The files a blueprint's plan depends on, by name, with their SHA-256.
    fn blueprint_files(&self, blueprint: &Blueprint) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        let name = blueprint
            .source()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.yaml", blueprint.name()));
        files.insert(
            format!("blueprints/{name}"),
            sha256_hex(blueprint.text().as_bytes()),
        );
        for app in blueprint.apps() {
            let text = self
                .templates
                .renderer()
                .template_source(&app.values_template)
                .unwrap_or_default();
            files.insert(
                format!("values/{}", app.values_template),
                sha256_hex(text.as_bytes()),
            );
        }
        files
    }

    /// One fingerprint of a blueprint's files, the CloudFormation template and the operator
    /// settings that shape a plan: when it moves, every plan made before is out of date.
    pub(crate) fn setup_digest(&self, blueprint: &Blueprint) -> String {
        let s = &self.settings;
        digest_of(&(
            blueprint.name(),
            blueprint.version(),
            self.blueprint_files(blueprint),
            sha256_hex(berth_aws::BUSINESS_UNIT_TEMPLATE.as_bytes()),
            &s.cluster,
            &s.domain,
            &s.registry_server,
            &s.registry_username,
            &s.kms_key_id,
            &s.existing_bucket,
            &s.permissions_boundary,
        ))
    }

    /// The blueprint a request asks for: its version, or the newest published for a new unit.
    pub(crate) fn blueprint_of_request(&self, ctx: &PlanContext) -> Result<&Blueprint, String> {
        let found = match &ctx.spec.blueprint_version {
            Some(v) => self.templates.blueprint_at(&ctx.blueprint, v.as_str()),
            None => self.templates.blueprint(&ctx.blueprint),
        };
        found.ok_or_else(|| {
            format!(
                "blueprint {} {} is not installed",
                ctx.blueprint,
                ctx.spec
                    .blueprint_version
                    .as_ref()
                    .map(|v| v.as_str())
                    .unwrap_or("(any version)")
            )
        })
    }

    /// The blueprint version a run was enqueued with.
    pub(crate) fn blueprint_of_run(&self, step: &StepContext) -> Result<&Blueprint, StepError> {
        self.templates
            .blueprint_at(&step.blueprint, &step.blueprint_version)
            .ok_or_else(|| {
                StepError::Permanent(format!(
                    "blueprint {} {} is no longer installed; start a new run",
                    step.blueprint, step.blueprint_version
                ))
            })
    }

    /// [`Self::setup_digest`] of every installed blueprint version (`name@version`), for the approval check of a server
    /// that runs this worker.
    pub fn setup_digests(&self) -> BTreeMap<String, String> {
        let t = &self.templates;
        t.blueprints()
            .flat_map(|newest| {
                t.versions(newest.name())
                    .into_iter()
                    .filter_map(|v| t.blueprint_at(newest.name(), &v))
            })
            .map(|b| {
                (
                    format!("{}@{}", b.name(), b.version()),
                    self.setup_digest(b),
                )
            })
            .collect()
    }

    /// What each stage will make for `unit` (no I/O): the stack's fingerprint, the namespace and
    /// quota, and each chart with its values rendered for people (secrets redacted) on
    /// `cluster_id`.
    pub(crate) fn desired(
        &self,
        unit: &UnitInfo,
        blueprint: &Blueprint,
        cluster_id: &str,
    ) -> Result<Desired, String> {
        let identity = Provisioner::identity_of(unit)?;
        let size = size_of(unit)?;
        let namespace =
            Self::namespace_of(&unit.company_slug, &unit.unit_slug).map_err(|e| e.to_string())?;
        let aws = self
            .aws
            .desired_fingerprint(&identity, &self.parameters_for(unit), None)
            .map_err(|e| e.to_string())?;
        let kubernetes = digest_of(&(
            &self.settings.cluster,
            &namespace,
            &namespace,
            size.quota(),
            size.limit_range(),
        ));
        // Values templates get no secrets (the charts read them from the namespace's Secrets).
        let ctx = RenderContext {
            unit: UnitInputs::new(&unit.company_name, &unit.unit_name, &unit.unit_slug, size),
            secrets: Secrets::new(),
            cluster: ClusterFacts {
                cluster_id: cluster_id.to_owned(),
                namespace,
                domain: self.settings.domain.clone(),
            },
        };
        let overrides = blueprint_overrides(&unit.overrides)?;
        let rendered = self
            .templates
            .renderer()
            .render_blueprint_with_overrides(blueprint, &ctx, &overrides, RenderMode::Preview)
            .map_err(|e| e.to_string())?;
        let charts: Vec<ChartPlan> = rendered
            .into_iter()
            .map(|r| ChartPlan {
                app: r.app.name.clone(),
                repo: r.app.chart.repo.clone(),
                chart: r.app.chart.chart.clone(),
                version: r.app.chart.version.clone(),
                depends_on: r.app.depends_on.clone(),
                values: r.values.yaml,
            })
            .collect();
        let chart_digests = charts
            .iter()
            .map(|c| {
                let readiness = blueprint
                    .app(&c.app)
                    .map(|a| format!("{:?}", a.readiness))
                    .unwrap_or_default();
                (
                    c.app.clone(),
                    digest_of(&(c, blueprint.version(), readiness)),
                )
            })
            .collect();
        Ok(Desired {
            digests: StageDigests {
                aws,
                kubernetes,
                charts: chart_digests,
            },
            setup_digest: self.setup_digest(blueprint),
            charts,
        })
    }

    /// Before any step acts: the run must carry an approved plan, and what the step (and every
    /// later one) would make must still be what that plan said.
    pub(crate) fn check_approved(&self, step: &StepContext) -> Result<(), StepError> {
        let approved = step.approved.as_ref().ok_or_else(|| {
            StepError::Permanent(
                "this run has no approved plan; Berth executes only approved plans".into(),
            )
        })?;
        let doc = &approved.document;
        // A decommission removes what exists and a rollback restores what was: nothing either
        // does depends on the templates.
        if step.request_kind == RequestKind::Decommission
            || step.kind == berth_runs::StepKind::Rollback
        {
            return Ok(());
        }
        let blueprint = self.blueprint_of_run(step)?;
        let now = self
            .desired(&step.unit, blueprint, &doc.kubernetes.cluster_id)
            .map_err(|e| {
                StepError::NeedsReapproval(format!("the plan can no longer be made: {e}"))
            })?;
        let mut changed = now.digests.changes_from(&doc.digests);
        if now.setup_digest != doc.inputs.setup_digest && changed.is_empty() {
            changed.push("the templates or settings the plan was made from".into());
        }
        if changed.is_empty() {
            Ok(())
        } else {
            Err(StepError::NeedsReapproval(format!(
                "changed since plan {} was approved: {}",
                &approved.hash[..12],
                changed.join("; ")
            )))
        }
    }

    async fn compute_plan(&self, ctx: &PlanContext) -> Result<PlanDocument, PlanError> {
        let invalid = PlanError::Invalid;
        let unit = &ctx.unit;
        let blueprint = self.blueprint_of_request(ctx).map_err(invalid)?;
        let identity = Provisioner::identity_of(unit).map_err(invalid)?;
        let size = size_of(unit).map_err(invalid)?;
        let namespace = Self::namespace_of(&unit.company_slug, &unit.unit_slug)
            .map_err(|e| invalid(e.to_string()))?;

        // Kubernetes through Rancher: read only.
        let rancher = |e: berth_rancher::RancherError| {
            if e.is_transient() {
                PlanError::Transient(format!("Rancher: {e}"))
            } else {
                PlanError::Invalid(format!("Rancher: {e}"))
            }
        };
        let cluster = self
            .rancher
            .find_cluster(&self.settings.cluster)
            .await
            .map_err(rancher)?;
        let capacity = self
            .rancher
            .cluster_capacity(&cluster.id)
            .await
            .map_err(rancher)?;
        let project = self
            .rancher
            .find_project(&cluster.id, &namespace)
            .await
            .map_err(rancher)?;
        let existing_ns = self
            .rancher
            .find_namespace(&cluster.id, &namespace)
            .await
            .map_err(rancher)?;

        if ctx.kind == RequestKind::Decommission {
            return self
                .plan_removal(
                    ctx,
                    blueprint,
                    &identity,
                    &cluster,
                    &namespace,
                    project,
                    existing_ns,
                )
                .await;
        }
        let desired = self
            .desired(unit, blueprint, &cluster.id)
            .map_err(invalid)?;

        // Every chart version must exist in its repository's index now.
        let mut missing = Vec::new();
        let mut index: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for c in &desired.charts {
            let key = (c.repo.clone(), c.chart.clone());
            if !index.contains_key(&key) {
                self.rancher
                    .wait_repo_ready(&cluster.id, &c.repo)
                    .await
                    .map_err(rancher)?;
                let versions = self
                    .rancher
                    .chart_versions(&cluster.id, &c.repo, &c.chart)
                    .await
                    .map_err(rancher)?;
                index.insert(key.clone(), versions);
            }
            let available = &index[&key];
            if !available.contains(&c.version) {
                let offered = if available.is_empty() {
                    "the repository has no such chart".to_owned()
                } else {
                    format!("available: {}", available.join(", "))
                };
                missing.push(format!(
                    "chart {} {} (app {}) is not in repository {} ({offered})",
                    c.chart, c.version, c.app, c.repo
                ));
            }
        }
        if !missing.is_empty() {
            return Err(invalid(missing.join("; ")));
        }

        // AWS: the change set, read then deleted.
        let preview = self
            .aws
            .preview_unit_stack(
                &identity,
                &self.parameters_for(unit),
                ctx.known_stack_id.as_deref(),
            )
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    PlanError::Transient(format!("AWS: {e}"))
                } else {
                    PlanError::Invalid(format!("AWS: {e}"))
                }
            })?;

        let change = match (ctx.kind, &ctx.current) {
            (RequestKind::Change, Some(current)) => Some(
                self.change_diff(ctx, current, &desired.charts, &cluster.id)
                    .map_err(invalid)?,
            ),
            _ => None,
        };
        Ok(PlanDocument {
            change,
            removal: None,
            request_id: ctx.request_id,
            inputs: PlanInputs {
                spec: ctx.spec.clone(),
                blueprint: blueprint.name().to_owned(),
                blueprint_version: blueprint.version().to_owned(),
                files: self.blueprint_files(blueprint),
                cloudformation_template: sha256_hex(berth_aws::BUSINESS_UNIT_TEMPLATE.as_bytes()),
                registry_server: self.settings.registry_server.clone(),
                domain: self.settings.domain.clone(),
                cluster: self.settings.cluster.clone(),
                setup_digest: desired.setup_digest,
            },
            aws: AwsPlan {
                stack_name: preview.stack_name.clone(),
                kind: match preview.kind {
                    PreviewKind::Create => "create",
                    PreviewKind::Update => "update",
                    PreviewKind::NoChanges => "none",
                }
                .to_owned(),
                changes: preview.changes.iter().map(resource_change).collect(),
                parameters: preview
                    .parameters
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
            },
            kubernetes: KubernetesPlan {
                cluster: cluster.name.clone(),
                cluster_id: cluster.id.clone(),
                project: namespace.clone(),
                existing_project: project.map(|p| p.id),
                namespace: namespace.clone(),
                namespace_exists: existing_ns.is_some(),
                quota: size.quota(),
                limit_range: size.limit_range(),
            },
            charts: desired.charts,
            capacity: CapacityFigures {
                allocatable_cpu_millis: capacity.cpu_millis,
                allocatable_memory_mib: capacity.memory_bytes / (1024 * 1024),
                committed: ctx.committed,
                requested: size.quota(),
            },
            digests: desired.digests,
        })
    }
}

/// A change as the plan document records it (the action in its stored snake_case name).
pub(crate) fn resource_change(c: &berth_aws::PlannedChange) -> ResourceChange {
    ResourceChange {
        action: serde_json::to_value(c.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        logical_id: c.logical_id.clone(),
        resource_type: c.resource_type.clone(),
        physical_id: c.physical_id.clone(),
    }
}

impl Planner for Provisioner {
    async fn plan(&self, ctx: &PlanContext) -> Result<PlanDocument, PlanError> {
        self.compute_plan(ctx).await
    }
}
