//! A planner with set answers, and helpers that plan and approve through the real plan worker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;

use crate::{PlanContext, PlanError, PlanWorker, PlanWorkerConfig, Planner, RunId};

use super::{actor, templates, Company, Env};

/// A planner with set answers: a small but complete plan whose capacity and content tests
/// choose (`revision` changes the content, hence the hash), or a set failure.
#[derive(Clone)]
pub struct TestPlanner {
    /// Allocatable CPU (cores) and memory (GiB) the "cluster" reports.
    pub allocatable: (u64, u64),
    pub revision: Arc<std::sync::atomic::AtomicU32>,
    pub failure: Arc<Mutex<Option<PlanError>>>,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for TestPlanner {
    fn default() -> Self {
        Self {
            allocatable: (64, 256),
            revision: Arc::default(),
            failure: Arc::default(),
            calls: Arc::default(),
        }
    }
}

impl TestPlanner {
    pub fn with_allocatable(cpu: u64, gib: u64) -> Self {
        Self {
            allocatable: (cpu, gib),
            ..Self::default()
        }
    }

    /// Later plans differ from earlier ones (a template was edited, say).
    pub fn bump(&self) {
        self.revision
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn fail_with(&self, e: Option<PlanError>) {
        *self.failure.lock().unwrap() = e;
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Planner for TestPlanner {
    async fn plan(&self, ctx: &PlanContext) -> Result<berth_domain::PlanDocument, PlanError> {
        use berth_domain::plan::*;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(e) = self.failure.lock().unwrap().clone() {
            return Err(e);
        }
        let revision = self.revision.load(std::sync::atomic::Ordering::SeqCst);
        let size = ctx.spec.size;
        let namespace = format!("{}-{}", ctx.unit.company_slug, ctx.unit.unit_slug);
        Ok(berth_domain::PlanDocument {
            request_id: ctx.request_id,
            inputs: PlanInputs {
                spec: ctx.spec.clone(),
                blueprint: ctx.blueprint.clone(),
                blueprint_version: "1.0.0".into(),
                files: [("values/dsm.yaml.j2".to_owned(), format!("rev{revision}"))].into(),
                cloudformation_template: "0".repeat(64),
                registry_server: "registry.example.com".into(),
                domain: "apps.example.com".into(),
                cluster: "berth".into(),
                setup_digest: format!("setup-rev{revision}"),
            },
            aws: AwsPlan {
                stack_name: format!("berth-{namespace}"),
                kind: "create".into(),
                changes: vec![ResourceChange {
                    action: "add".into(),
                    logical_id: "RegistrySecret".into(),
                    resource_type: "AWS::SecretsManager::Secret".into(),
                    physical_id: None,
                }],
                parameters: vec![("RegistryPasswordJson".into(), REDACTED.into())],
            },
            kubernetes: KubernetesPlan {
                cluster: "berth".into(),
                cluster_id: "c-m-berth001".into(),
                project: namespace.clone(),
                existing_project: None,
                namespace,
                namespace_exists: false,
                quota: size.quota(),
                limit_range: size.limit_range(),
            },
            charts: vec![ChartPlan {
                app: "dsm".into(),
                repo: "stable".into(),
                chart: "dsm".into(),
                version: "2.7.0".into(),
                depends_on: vec![],
                values: format!("password: {REDACTED}\nrevision: {revision}\n"),
            }],
            capacity: CapacityFigures {
                allocatable_cpu_millis: self.allocatable.0 * 1000,
                allocatable_memory_mib: self.allocatable.1 * 1024,
                committed: ctx.committed,
                requested: size.quota(),
            },
            digests: StageDigests {
                aws: "aws".into(),
                kubernetes: "k8s".into(),
                charts: [("dsm".to_owned(), format!("dsm-rev{revision}"))].into(),
            },
            change: None,
            removal: None,
        })
    }
}

/// A plan worker for tests: quick retries, short lease.
pub fn plan_worker<P: Planner>(pool: &PgPool, planner: P) -> PlanWorker<P> {
    PlanWorker::new(
        pool.clone(),
        planner,
        PlanWorkerConfig {
            lease: Duration::from_secs(5),
            poll_interval: Duration::from_millis(20),
            max_attempts: 2,
            retry_after: Duration::ZERO,
            ..PlanWorkerConfig::default()
        },
    )
}

/// The request's current plan's hash (panics unless it is ready).
pub async fn ready_hash(pool: &PgPool, env: &Env) -> String {
    let plan = crate::plans::current_plan(pool, env.request_id)
        .await
        .unwrap()
        .expect("a plan");
    plan.hash
        .unwrap_or_else(|| panic!("plan not ready: {:?} {:?}", plan.status, plan.error))
}

/// Plans a submitted request with `planner` (a plan worker drained once), approves the plan as
/// the company's admin, and returns the run the approval enqueued.
pub async fn plan_and_approve<P: Planner>(
    pool: &PgPool,
    company: &Company,
    env: &Env,
    planner: P,
) -> RunId {
    plan_worker(pool, planner).drain().await.unwrap();
    let hash = ready_hash(pool, env).await;
    let terms = berth_domain::ApprovalTerms::parse(&hash, false, "").unwrap();
    crate::decide_request(
        pool,
        &templates(),
        env.request_id,
        &actor(company, true),
        berth_domain::Decision::parse("approve", "").unwrap(),
        Some(&terms),
        crate::ApprovalContext::default(),
    )
    .await
    .unwrap()
    .run
    .expect("an approval enqueues a run")
}
