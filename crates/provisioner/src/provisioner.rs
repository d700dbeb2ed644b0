//! The real step executor: the AWS stage (berth-aws), values rendering (berth-blueprint) and
//! the Rancher stage (berth-rancher). Every step is a reconcile: it asks what exists first, so
//! repeating it after a crash or an expired lease changes nothing that is already right.
//!
//! Secrets read from AWS live only in this process's memory, per run. A chart step that finds
//! none (the worker restarted, or another worker read them) reads them again by the ARNs the
//! `ensure_stack` step stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_aws::{
    AwsError, AwsStage, ChangeSetKind, EnsureKind, EnsuredUnit, UnitIdentity, UnitOutputs,
    UnitParameters, UnitSecrets,
};
use berth_blueprint::{ClusterFacts, RenderContext, RenderMode, Secrets, Templates, UnitInputs};
use berth_rancher::{
    prepare_target, ChartAction, ChartSpec, DeployPlan, KubeSecret, RancherClient, RancherError,
    SecretOutcome, Target, TargetSpec,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use berth_runs::{
    RunId, StepContext, StepError, StepExecutor, StepKind, StepOutput, UnitInfo, ENSURE_NAMESPACE,
    ENSURE_STACK,
};

/// Runs kept in the secrets cache at most (runs that finished on another worker are never
/// reported here; the oldest entries go first).
const MAX_CACHED_RUNS: usize = 256;

/// Deployment settings shared by every unit.
#[derive(Debug, Clone)]
pub struct ProvisionerSettings {
    /// Rancher cluster name or id where units are deployed.
    pub cluster: String,
    /// Base DNS domain of the cluster's ingress (`cluster.domain` in values templates).
    pub domain: String,
    /// Image registry the units pull from; stored in each unit's registry secret.
    pub registry_server: String,
    pub registry_username: String,
    pub registry_password: SecretString,
    /// Customer managed KMS key for the secrets (the account default when `None`).
    pub kms_key_id: Option<String>,
    /// A company-wide bucket instead of one per unit.
    pub existing_bucket: Option<String>,
    /// Permissions boundary for the units' IAM users.
    pub permissions_boundary: Option<String>,
    /// Install charts as legacy v3 apps from this catalog instead of through Apps & Marketplace
    /// (`None`, the default).
    pub legacy_catalog: Option<berth_rancher::LegacyCatalog>,
    /// Days a decommissioned unit's secrets stay recoverable (7 to 30; default 7).
    pub secret_recovery_days: u16,
}

/// The production [`StepExecutor`].
pub struct Provisioner {
    pub(crate) aws: AwsStage,
    pub(crate) templates: Arc<Templates>,
    pub(crate) rancher: RancherClient,
    pub(crate) settings: ProvisionerSettings,
    secrets: Mutex<SecretsCache>,
}

#[derive(Default)]
struct SecretsCache {
    by_run: HashMap<RunId, Arc<Secrets>>,
    order: Vec<RunId>,
}

impl SecretsCache {
    fn insert(&mut self, run: RunId, secrets: Arc<Secrets>) {
        if self.by_run.insert(run, secrets).is_none() {
            self.order.push(run);
        }
        while self.order.len() > MAX_CACHED_RUNS {
            let old = self.order.remove(0);
            self.by_run.remove(&old);
        }
    }

    fn remove(&mut self, run: RunId) {
        self.by_run.remove(&run);
        self.order.retain(|r| *r != run);
    }
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("rancher", &self.rancher)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) fn aws_error(e: AwsError) -> StepError {
    if matches!(e, AwsError::UpdateRolledBack { .. }) {
        // CloudFormation put the stack back: nothing of the unit changed.
        StepError::RolledBack(e.to_string())
    } else if e.is_retryable() {
        StepError::Transient(e.to_string())
    } else {
        StepError::Permanent(e.to_string())
    }
}

pub(crate) fn rancher_error(e: RancherError, secrets: Option<&Secrets>) -> StepError {
    let text = match secrets {
        Some(s) => s.redact_text(&e.to_string()),
        None => e.to_string(),
    };
    if e.is_transient() {
        StepError::Transient(text)
    } else {
        StepError::Permanent(text)
    }
}

fn corrupt(what: &str) -> StepError {
    StepError::Permanent(format!("stored output of {what} is missing or malformed"))
}

/// The names [`to_unit_secrets`] fills (one per field of [`UnitSecrets`]): what the run holds in
/// memory, writes into the namespace's Secrets ([`workload_secrets`]) and scrubs from errors.
/// None of them reaches a values template.
pub(crate) const UNIT_SECRET_NAMES: &[&str] = &[
    "registry_server",
    "registry_username",
    "registry_password",
    "oauth_client_id",
    "oauth_client_secret",
    "db_username",
    "db_password",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_bucket",
    "s3_prefix",
];

/// The unit's secrets by name, in zeroizing memory ([`UNIT_SECRET_NAMES`]).
fn to_unit_secrets(s: &UnitSecrets) -> Secrets {
    let mut out = Secrets::new();
    out.insert("registry_server", s.registry.server.as_str());
    out.insert("registry_username", s.registry.username.as_str());
    out.insert("registry_password", s.registry.password.expose());
    out.insert("oauth_client_id", s.oauth.client_id.as_str());
    out.insert("oauth_client_secret", s.oauth.client_secret.expose());
    out.insert("db_username", s.database.username.as_str());
    out.insert("db_password", s.database.password.expose());
    out.insert("s3_access_key_id", s.s3.access_key_id.as_str());
    out.insert("s3_secret_access_key", s.s3.secret_access_key.expose());
    out.insert("s3_bucket", s.s3.bucket.as_str());
    out.insert("s3_prefix", s.s3.prefix.as_str());
    debug_assert!(UNIT_SECRET_NAMES.iter().all(|n| out.get(n).is_some()));
    out
}

/// The Secrets a unit's workloads read (docs/rancher.md, "Workload secrets"), in its namespace:
/// `<slug>-registry` (the image pull secret), `<slug>-db` (the keys the influxdb chart expects),
/// `<slug>-oauth` and `<slug>-s3`. The values templates name these Secrets and keys only.
pub(crate) fn workload_secrets(unit_slug: &str, s: &Secrets) -> Result<Vec<KubeSecret>, StepError> {
    let get = |name: &str| -> Result<SecretString, StepError> {
        s.get(name)
            .map(|v| SecretString::from(v.expose_secret().to_owned()))
            .ok_or_else(|| StepError::Permanent(format!("the unit's secret {name} is missing")))
    };
    let plain =
        |name: &str| -> Result<String, StepError> { Ok(get(name)?.expose_secret().to_owned()) };
    let label = |k: KubeSecret| {
        k.with_label("app.kubernetes.io/managed-by", "berth")
            .with_label("berth.io/unit", unit_slug)
    };
    Ok(vec![
        label(KubeSecret::docker_registry(
            format!("{unit_slug}-registry"),
            &plain("registry_server")?,
            &plain("registry_username")?,
            &get("registry_password")?,
        )),
        label(
            KubeSecret::opaque(format!("{unit_slug}-db"))
                .with("influxdb-user", get("db_username")?)
                .with("influxdb-password", get("db_password")?),
        ),
        label(
            KubeSecret::opaque(format!("{unit_slug}-oauth"))
                .with("client-id", get("oauth_client_id")?)
                .with("client-secret", get("oauth_client_secret")?),
        ),
        label(
            KubeSecret::opaque(format!("{unit_slug}-s3"))
                .with("bucket", get("s3_bucket")?)
                .with("prefix", get("s3_prefix")?)
                .with("access-key-id", get("s3_access_key_id")?)
                .with("secret-access-key", get("s3_secret_access_key")?),
        ),
    ])
}

impl Provisioner {
    pub fn new(
        aws: AwsStage,
        templates: Arc<Templates>,
        rancher: RancherClient,
        settings: ProvisionerSettings,
    ) -> Self {
        Self {
            aws,
            templates,
            rancher,
            settings,
            secrets: Mutex::new(SecretsCache::default()),
        }
    }

    /// Runs whose secrets are held in memory right now (for tests and diagnostics).
    pub fn cached_runs(&self) -> usize {
        self.cache().by_run.len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SecretsCache> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.secrets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn identity(step: &StepContext) -> Result<UnitIdentity, StepError> {
        Self::identity_of(&step.unit).map_err(StepError::Permanent)
    }

    /// The unit as AWS names it, a later incarnation of its slug included.
    pub(crate) fn identity_of(u: &UnitInfo) -> Result<UnitIdentity, String> {
        let unit =
            UnitIdentity::from_names(&u.company_slug, &u.company_name, &u.unit_slug, &u.unit_name);
        match &u.incarnation {
            Some(i) => unit.and_then(|unit| unit.with_incarnation(i)),
            None => unit,
        }
        .map_err(|e| e.to_string())
    }

    /// The Kubernetes namespace and Rancher project of a unit: `<company>-<unit>`.
    pub fn namespace_of(company_slug: &str, unit_slug: &str) -> Result<String, StepError> {
        let ns = format!("{company_slug}-{unit_slug}");
        if ns.len() > 63 {
            return Err(StepError::Permanent(format!(
                "namespace {ns:?} is longer than 63 characters; shorten the unit's slug"
            )));
        }
        Ok(ns)
    }

    pub(crate) fn parameters_for(&self, u: &UnitInfo) -> UnitParameters {
        UnitParameters {
            registry_server: self.settings.registry_server.clone(),
            registry_username: self.settings.registry_username.clone(),
            registry_password: SecretString::from(
                self.settings.registry_password.expose_secret().to_owned(),
            ),
            oauth_client_id: format!("{}-{}", u.company_slug, u.unit_slug),
            // Unit slugs are lower-case letters, digits and '-', starting with a letter.
            db_username: u.unit_slug.replace('-', "_"),
            kms_key_id: self.settings.kms_key_id.clone(),
            existing_bucket: self.settings.existing_bucket.clone(),
            permissions_boundary: self.settings.permissions_boundary.clone(),
        }
    }

    async fn ensure_stack(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let unit = Self::identity(step)?;
        let known = step
            .previous_output
            .as_ref()
            .and_then(|o| o["stack_id"].as_str())
            .map(str::to_owned);
        let plan = self
            .aws
            .plan_unit_stack(&unit, &self.parameters_for(&step.unit), known.as_deref())
            .await
            .map_err(aws_error)?;
        // The live stack must still need what the approved plan showed. A change set with no
        // changes is fine: the stack already is what was approved (a repeated step).
        if let Some(approved) = &step.approved {
            let now: Vec<_> = plan
                .changes
                .iter()
                .map(crate::planner::resource_change)
                .collect();
            if !plan.is_noop() && now != approved.document.aws.changes {
                if let Err(e) = self.aws.discard_plan(&plan).await {
                    tracing::warn!(error = %e, "could not discard the change set");
                }
                return Err(StepError::NeedsReapproval(format!(
                    "the live stack changed since plan {} was approved: it now needs {}",
                    &approved.hash[..12],
                    plan.summary()
                )));
            }
        }
        let stack = self.aws.apply_plan(&plan).await.map_err(aws_error)?;
        let outputs = UnitOutputs::from_stack(&stack).map_err(aws_error)?;
        let ensured = EnsuredUnit {
            kind: match (plan.is_noop(), plan.kind) {
                (true, _) => EnsureKind::Unchanged,
                (false, ChangeSetKind::Create) => EnsureKind::Created,
                (false, ChangeSetKind::Update) => EnsureKind::Updated,
            },
            plan: (!plan.is_noop()).then_some(plan),
            stack,
            outputs,
        };
        let kind = serde_json::to_value(ensured.kind).unwrap_or(Value::Null);
        // Found again by its tags, as every later reader finds it; its resources (ids and
        // types, never values) are shown on the environment page.
        let resources = self
            .aws
            .find_unit_stack(&unit)
            .await
            .map_err(aws_error)?
            .map(|found| found.resources)
            .unwrap_or_default();
        let plan = ensured.plan.as_ref();
        Ok(StepOutput {
            output: Some(json!({
                "stack_id": ensured.stack.stack_id,
                "stack_name": ensured.stack.stack_name,
                "stack_status": ensured.stack.status,
                "kind": kind,
                "plan": plan.map(|p| p.summary()).unwrap_or_else(|| "no changes".into()),
                "changes": plan.map(|p| p.changes.clone()).unwrap_or_default(),
                "resources": resources,
                "outputs": ensured.outputs,
            })),
            log: vec![format!(
                "stack {} {}",
                unit.stack_name(),
                kind.as_str().unwrap_or("ensured")
            )],
        })
    }

    async fn read_secrets(&self, step: &StepContext) -> Result<Arc<Secrets>, StepError> {
        let outputs: UnitOutputs = step
            .outputs
            .get(ENSURE_STACK)
            .and_then(|o| serde_json::from_value(o["outputs"].clone()).ok())
            .ok_or_else(|| corrupt(ENSURE_STACK))?;
        let unit_secrets = self
            .aws
            .read_unit_secrets(&outputs)
            .await
            .map_err(aws_error)?;
        let secrets = Arc::new(to_unit_secrets(&unit_secrets));
        self.cache().insert(step.run_id, secrets.clone());
        Ok(secrets)
    }

    async fn ensure_namespace(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let u = &step.unit;
        let namespace = Self::namespace_of(&u.company_slug, &u.unit_slug)?;
        let spec = TargetSpec {
            cluster: self.settings.cluster.clone(),
            project: namespace.clone(),
            project_description: format!("Berth: {} / {}", u.company_name, u.unit_name),
            namespace,
        };
        let prepared = prepare_target(&self.rancher, &spec)
            .await
            .map_err(|e| rancher_error(e, None))?;
        Ok(StepOutput {
            output: Some(json!({
                "cluster_id": prepared.target.cluster_id,
                "cluster_name": prepared.cluster_name,
                "project_id": prepared.project_id,
                "namespace": prepared.target.namespace,
            })),
            log: vec![format!(
                "namespace {} in project {} on cluster {}",
                prepared.target.namespace, prepared.project_id, prepared.cluster_name
            )],
        })
    }

    async fn deploy_chart(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        let app = step
            .app
            .as_deref()
            .ok_or_else(|| StepError::Permanent("chart step without an app".into()))?;
        let blueprint = self.blueprint_of_run(step)?;
        let ns = step
            .outputs
            .get(ENSURE_NAMESPACE)
            .ok_or_else(|| corrupt(ENSURE_NAMESPACE))?;
        let target = Target {
            cluster_id: ns["cluster_id"]
                .as_str()
                .ok_or_else(|| corrupt(ENSURE_NAMESPACE))?
                .to_owned(),
            namespace: ns["namespace"]
                .as_str()
                .ok_or_else(|| corrupt(ENSURE_NAMESPACE))?
                .to_owned(),
        };
        let cached = self.cache().by_run.get(&step.run_id).cloned();
        let (secrets, reread) = match cached {
            Some(s) => (s, false),
            None => (self.read_secrets(step).await?, true),
        };
        // The workloads' credentials go into the namespace as Secrets, before the chart that
        // reads them (every chart step ensures them: cheap reads when nothing changed, and a
        // retry or a change run rewrites what differs).
        let mut written = Vec::new();
        for k in workload_secrets(&step.unit.unit_slug, &secrets)? {
            let outcome = self
                .rancher
                .ensure_secret(&target.cluster_id, &target.namespace, &k)
                .await
                .map_err(|e| rancher_error(e, Some(&secrets)))?;
            if outcome != SecretOutcome::Unchanged {
                written.push(format!("secret {} {}", k.name, outcome.as_str()));
            }
        }
        // No secret value in the render context: a template can only name the Secrets.
        let ctx = RenderContext {
            unit: UnitInputs::new(
                &step.unit.company_name,
                &step.unit.unit_name,
                &step.unit.unit_slug,
                step.unit
                    .size
                    .parse()
                    .map_err(|e: String| StepError::Permanent(e))?,
            ),
            secrets: Secrets::new(),
            cluster: ClusterFacts {
                cluster_id: target.cluster_id.clone(),
                namespace: target.namespace.clone(),
                domain: self.settings.domain.clone(),
            },
        };
        let overrides = crate::planner::blueprint_overrides(&step.unit.overrides)
            .map_err(StepError::Permanent)?;
        let rendered = self
            .templates
            .renderer()
            .render_blueprint_with_overrides(blueprint, &ctx, &overrides, RenderMode::Real)
            .map_err(|e| StepError::Permanent(secrets.redact_text(&e.to_string())))?;
        let plan = DeployPlan::new(blueprint, &rendered)
            .map_err(|e| StepError::Permanent(e.to_string()))?;
        let planned = plan
            .apps
            .into_iter()
            .find(|a| a.name == app)
            .ok_or_else(|| {
                StepError::Permanent(format!(
                    "app {app:?} is not in blueprint {}",
                    step.blueprint
                ))
            })?;
        let spec = ChartSpec {
            release: planned.name,
            repo: planned.repo,
            chart: planned.chart,
            version: planned.version,
            values: planned.values,
            wait: planned.wait,
            timeout: planned.timeout,
        };
        let mode = self.apps_mode(ns["project_id"].as_str())?;
        let outcome = self
            .rancher
            .deploy(&mode, &target, &spec)
            .await
            .map_err(|e| rancher_error(e, Some(&secrets)))?;
        let action = match outcome.action {
            ChartAction::Unchanged => "unchanged",
            ChartAction::Installed => "installed",
            ChartAction::Upgraded => "upgraded",
            ChartAction::RolledBack => "rolled back",
        };
        let mut log = Vec::new();
        if reread {
            log.push("secrets re-read from AWS (not in this worker's memory)".to_owned());
        }
        log.extend(written);
        log.push(format!(
            "{} {} {} revision {}",
            spec.release, action, outcome.chart_version, outcome.revision
        ));
        Ok(StepOutput {
            output: Some(json!({
                "app": app,
                "release": spec.release,
                "action": action,
                "revision": outcome.revision,
                "previous_revision": outcome.previous_revision,
                "chart_version": outcome.chart_version,
            })),
            log,
        })
    }
}

impl StepExecutor for Provisioner {
    async fn execute(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        self.check_approved(step)?;
        match step.kind {
            StepKind::EnsureStack => self.ensure_stack(step).await,
            StepKind::ReadSecrets => {
                let secrets = self.read_secrets(step).await?;
                let names: Vec<&str> = secrets.names().collect();
                Ok(StepOutput {
                    output: Some(json!({ "secrets": names })),
                    log: vec![format!("{} secrets held in memory", names.len())],
                })
            }
            StepKind::EnsureNamespace => self.ensure_namespace(step).await,
            StepKind::DeployChart => self.deploy_chart(step).await,
            StepKind::Rollback => self.rollback(step).await,
            StepKind::UninstallChart => self.uninstall_chart(step).await,
            StepKind::RemoveNamespace => self.remove_namespace(step).await,
            StepKind::DeleteStack => self.delete_stack(step).await,
            StepKind::ProveRemoved => self.prove_removed(step).await,
        }
    }

    fn run_finished(&self, run: RunId) {
        self.cache().remove(run);
    }
}

#[cfg(test)]
mod tests;
