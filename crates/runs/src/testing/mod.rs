//! Test support (feature `test-support`; the product never enables it), shared by this crate's
//! tests and benches and berth-provisioner's: fixtures (company, users, an approved request), a
//! scripted executor that counts its calls, and small database probes.

mod executor;
mod planner;

pub use executor::{Call, TestExecutor};
pub use planner::{plan_and_approve, plan_worker, ready_hash, TestPlanner};

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_backoff::Backoff;
use berth_blueprint::{Blueprint, Templates};
use berth_domain::RequestStatus;
use berth_testkit::until;
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{enqueue_run_with, EngineConfig, RunId, StepRetries};

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
    let spec = medium_spec(name, slug);
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

/// The spec of a new `medium` insight unit owned by Dana, as the tests' environments have.
fn medium_spec(name: &str, slug: &str) -> berth_domain::RequestSpec {
    berth_domain::RequestSpec::parse(name, slug, "", "dana@seaview.example", "insight", "medium")
        .expect("a valid test spec")
}

/// A request for a new `medium` unit, submitted as the product does (its first plan queued).
pub async fn submitted_env(pool: &PgPool, company: &Company, slug: &str, name: &str) -> Env {
    let spec = medium_spec(name, slug);
    let sub = crate::plans::submit_request(pool, company.id, &actor(company, false), &spec)
        .await
        .unwrap();
    Env {
        environment_id: sub.environment_id,
        request_id: sub.request_id,
    }
}
