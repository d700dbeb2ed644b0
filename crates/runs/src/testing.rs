//! Test support (feature `test-support`; the product never enables it), shared by this crate's
//! tests and benches and berth-provisioner's: fixtures (company, users, an approved request), a
//! scripted executor that counts its calls, and small database probes.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_backoff::Backoff;
use berth_blueprint::{Blueprint, Templates};
use berth_domain::RequestStatus;
use berth_testkit::until;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use tokio::sync::{Barrier, Semaphore};
use uuid::Uuid;

use crate::{
    enqueue_run_with, EngineConfig, PlanContext, PlanError, PlanWorker, PlanWorkerConfig, Planner,
    RunId, StepContext, StepError, StepExecutor, StepOutput, StepRetries,
};

/// Every migration of the workspace (for `#[sqlx::test(migrator = "...")]`).
pub use berth_db::MIGRATOR;

pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates")
}

pub fn templates() -> Templates {
    Templates::open(&templates_dir()).expect("templates")
}

pub fn insight() -> Blueprint {
    templates().blueprint("insight").unwrap().clone()
}

/// A blueprint with two independent charts after a common one: `base` → {`left`, `right`}.
pub fn fork_blueprint() -> Blueprint {
    let src = [
        "name: fork",
        "version: 0.1.0",
        "apps:",
        "  - name: base",
        "    chart: {repo: stable, chart: foundation, version: 0.3.1}",
        "    values: foundation.yaml.j2",
        "  - name: left",
        "    chart: {repo: stable, chart: certs, version: 1.2.0}",
        "    values: certs.yaml.j2",
        "    depends_on: [base]",
        "  - name: right",
        "    chart: {repo: stable, chart: influxdb, version: 4.3.2}",
        "    values: influxdb.yaml.j2",
        "    depends_on: [base]",
    ]
    .join("\n");
    Blueprint::parse(
        &src,
        Path::new("fork.yaml"),
        &templates_dir().join("values"),
    )
    .expect("fork blueprint")
}

/// Retries at once, so tests never wait for a backoff.
pub fn quick_retry() -> StepRetries {
    StepRetries {
        backoff: Backoff::doubling(Duration::ZERO, Duration::from_secs(60)),
        ..StepRetries::default()
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        worker_id: Uuid::new_v4(),
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_millis(50),
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(5),
        retry: quick_retry(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Company {
    pub id: Uuid,
    pub requester: Uuid,
    pub admin: Uuid,
}

#[derive(Debug, Clone, Copy)]
pub struct Env {
    pub environment_id: Uuid,
    pub request_id: Uuid,
}

pub async fn seed_company(pool: &PgPool, slug: &str, name: &str) -> Company {
    let company = Company {
        id: Uuid::new_v4(),
        requester: Uuid::new_v4(),
        admin: Uuid::new_v4(),
    };
    sqlx::query("INSERT INTO companies (id, name, slug) VALUES ($1, $2, $3)")
        .bind(company.id)
        .bind(name)
        .bind(slug)
        .execute(pool)
        .await
        .unwrap();
    for (id, who, roles) in [
        (company.requester, "Dana Manager", vec!["manager"]),
        (company.admin, "Alex Admin", vec!["admin"]),
    ] {
        sqlx::query(
            "INSERT INTO users (id, issuer, subject, display_name, roles)
             VALUES ($1, 'https://idp.test', $2, $3, $4)",
        )
        .bind(id)
        .bind(id.to_string())
        .bind(who)
        .bind(roles)
        .execute(pool)
        .await
        .unwrap();
    }
    company
}

/// An environment with an approved `create` request (as the approval leaves it).
pub async fn approved_env(pool: &PgPool, company: &Company, slug: &str, name: &str) -> Env {
    let env = Env {
        environment_id: Uuid::new_v4(),
        request_id: Uuid::new_v4(),
    };
    sqlx::query(
        "INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint, size,
                                   status, created_by)
         VALUES ($1, $2, $3, $4, 'dana@seaview.example', 'insight', 'medium', 'approved', $5)",
    )
    .bind(env.environment_id)
    .bind(company.id)
    .bind(name)
    .bind(slug)
    .bind(company.requester)
    .execute(pool)
    .await
    .unwrap();
    let spec = berth_domain::RequestSpec::parse(
        name,
        slug,
        "",
        "dana@seaview.example",
        "insight",
        "medium",
    )
    .expect("a valid test spec");
    sqlx::query(
        "INSERT INTO requests (id, environment_id, kind, spec, status, requested_by, decided_by,
                               decided_at)
         VALUES ($1, $2, 'create', $5, 'approved', $3, $4, now())",
    )
    .bind(env.request_id)
    .bind(env.environment_id)
    .bind(company.requester)
    .bind(company.admin)
    .bind(serde_json::to_value(&spec).unwrap())
    .execute(pool)
    .await
    .unwrap();
    env
}

/// Enqueues a run in its own transaction, as the approval would.
pub async fn enqueue(
    pool: &PgPool,
    env: &Env,
    company: &Company,
    blueprint: &Blueprint,
    retry: &StepRetries,
) -> RunId {
    let mut tx = pool.begin().await.unwrap();
    let run = enqueue_run_with(
        &mut tx,
        env.request_id,
        env.environment_id,
        blueprint,
        company.admin,
        retry,
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    run
}

/// The request's status and its environment's.
pub async fn request_status(pool: &PgPool, env: &Env) -> (RequestStatus, RequestStatus) {
    let row = sqlx::query(
        "SELECT r.status AS request, e.status AS environment
         FROM requests r JOIN environments e ON e.id = r.environment_id WHERE r.id = $1",
    )
    .bind(env.request_id)
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get("request"), row.get("environment"))
}

/// The environment's event kinds, oldest first.
pub async fn event_kinds(pool: &PgPool, env: &Env) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM events WHERE environment_id = $1 ORDER BY id")
        .bind(env.environment_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

pub async fn events(pool: &PgPool, env: &Env, kind: &str) -> Vec<(Option<Uuid>, Value)> {
    sqlx::query(
        "SELECT actor_id, details FROM events WHERE environment_id = $1 AND kind = $2 ORDER BY id",
    )
    .bind(env.environment_id)
    .bind(kind)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get("actor_id"), r.get("details")))
    .collect()
}

/// Moves every lease and backoff of the database into the past: what waiting would do, without
/// waiting.
pub async fn time_travel(pool: &PgPool) {
    sqlx::query(
        "UPDATE steps SET lease_expires_at = now() - interval '1 second'
         WHERE status = 'running'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE steps SET run_after = now() - interval '1 second' WHERE status = 'pending'",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Waits until `n` steps are `running` (a step claimed by a task under test).
pub async fn until_running(pool: &PgPool, n: i64) {
    until(
        "steps start running",
        2000,
        Duration::from_millis(5),
        || async {
            let running: i64 =
                sqlx::query_scalar("SELECT count(*) FROM steps WHERE status = 'running'")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            running >= n
        },
    )
    .await;
}

/// Waits until the executor has been called `n` times.
pub async fn until_called(exec: &TestExecutor, n: usize) {
    until(
        &format!("the executor is called {n} times"),
        2000,
        Duration::from_millis(5),
        || async { exec.calls().len() >= n },
    )
    .await;
}

/// Scripted answers per step name, oldest first.
type Script = HashMap<String, VecDeque<Result<StepOutput, StepError>>>;

/// One recorded call of the test executor.
#[derive(Debug, Clone)]
pub struct Call {
    pub run: RunId,
    pub step_id: Uuid,
    pub name: String,
    pub attempt: u32,
    pub idempotency_key: String,
    /// Names of the outputs the step could see.
    pub saw_outputs: Vec<String>,
}

/// A scripted executor: answers per step name from a queue (success when empty), records
/// every call, and can make chosen steps wait at a barrier or for a signal.
#[derive(Clone, Default)]
pub struct TestExecutor {
    pub calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Mutex<Script>>,
    barrier: Option<(Vec<String>, Arc<Barrier>)>,
    hold: Option<(Vec<String>, Arc<Semaphore>)>,
    hang: bool,
    pause: Duration,
}

impl TestExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Shares the call log (and script) with `other`: two engines, one count.
    pub fn sharing(other: &TestExecutor) -> Self {
        Self {
            calls: other.calls.clone(),
            script: other.script.clone(),
            ..Self::default()
        }
    }

    pub fn script(self, step: &str, results: Vec<Result<StepOutput, StepError>>) -> Self {
        self.script
            .lock()
            .unwrap()
            .entry(step.to_owned())
            .or_default()
            .extend(results);
        self
    }

    /// `steps` wait for each other: they only pass when all are running at once.
    pub fn barrier(mut self, steps: &[&str]) -> Self {
        let b = Arc::new(Barrier::new(steps.len()));
        self.barrier = Some((steps.iter().map(|s| s.to_string()).collect(), b));
        self
    }

    /// `steps` wait until the returned gate gets permits (`add_permits`).
    pub fn hold(mut self, steps: &[&str]) -> (Self, Arc<Semaphore>) {
        let n = Arc::new(Semaphore::new(0));
        self.hold = Some((steps.iter().map(|s| s.to_string()).collect(), n.clone()));
        (self, n)
    }

    /// Every call hangs forever (a worker that will crash).
    pub fn hanging(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Every call takes a little while (lets two engines interleave).
    pub fn pausing(mut self, d: Duration) -> Self {
        self.pause = d;
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn count(&self, step: &str) -> usize {
        self.calls().iter().filter(|c| c.name == step).count()
    }
}

impl StepExecutor for TestExecutor {
    async fn execute(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        self.calls.lock().unwrap().push(Call {
            run: step.run_id,
            step_id: step.step_id.0,
            name: step.name.clone(),
            attempt: step.attempt,
            idempotency_key: step.idempotency_key.clone(),
            saw_outputs: step.outputs.keys().cloned().collect(),
        });
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some((steps, barrier)) = &self.barrier {
            if steps.contains(&step.name) {
                barrier.wait().await;
            }
        }
        if let Some((steps, gate)) = &self.hold {
            if steps.contains(&step.name) {
                let _permit = gate.acquire().await.expect("gate open");
            }
        }
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(&step.name)
            .and_then(VecDeque::pop_front);
        scripted.unwrap_or_else(|| {
            // What the real executor reports where the engine reads it: a chart step's
            // release, a rollback's apps, a proof's checks.
            let output = match (step.kind, &step.app) {
                (crate::StepKind::DeployChart, Some(app)) => json!({
                    "by": step.name, "attempt": step.attempt, "app": app, "release": app,
                    "action": "installed", "chart_version": "1.0.0",
                    "revision": step.releases_before.get(app).map_or(1, |r| r.revision + 1),
                }),
                (crate::StepKind::Rollback, _) => json!({
                    "apps": step.releases_before.iter().map(|(app, r)| json!({
                        "app": app, "release": app, "chart_version": r.chart_version,
                        "revision": r.revision + 2, "rolled_back_to": r.revision,
                    })).collect::<Vec<_>>(),
                }),
                (crate::StepKind::ProveRemoved, _) => json!({
                    "checks": [{"system": "test", "name": "nothing left", "passed": true, "detail": "scripted"}],
                    "retained": [],
                }),
                _ => json!({ "by": step.name, "attempt": step.attempt }),
            };
            Ok(StepOutput {
                output: Some(output),
                log: vec![format!("{} done", step.name)],
            })
        })
    }
}

/// A unit slug unique to this test run (the AWS emulator outlives test databases).
pub fn unique_slug() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "unit-{:x}{}",
        nanos % 0x0fff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The company's requester or admin as an actor.
pub fn actor(company: &Company, admin: bool) -> berth_domain::Actor {
    use berth_domain::{Actor, Role};
    if admin {
        Actor {
            user_id: company.admin,
            name: "Alex Admin".into(),
            roles: vec![Role::Admin],
            token_id: None,
        }
    } else {
        Actor {
            user_id: company.requester,
            name: "Dana Manager".into(),
            roles: vec![Role::Manager],
            token_id: None,
        }
    }
}

/// A request for a new `medium` unit, submitted as the product does (its first plan queued).
pub async fn submitted_env(pool: &PgPool, company: &Company, slug: &str, name: &str) -> Env {
    let spec = berth_domain::RequestSpec::parse(
        name,
        slug,
        "",
        "dana@seaview.example",
        "insight",
        "medium",
    )
    .unwrap();
    let sub = crate::plans::submit_request(pool, company.id, &actor(company, false), &spec)
        .await
        .unwrap();
    Env {
        environment_id: sub.environment_id,
        request_id: sub.request_id,
    }
}

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
