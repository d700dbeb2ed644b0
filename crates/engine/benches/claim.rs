//! Claiming throughput of the engine (figures, not a timed test).
//!
//! `cargo bench -p berth-engine --bench claim` with `DATABASE_URL` pointing at a Postgres role
//! that may create databases. It creates a scratch database, enqueues `BENCH_RUNS` insight runs
//! (default 200, 7 steps each), drains them with `BENCH_WORKERS` engines (default 4) of
//! `BENCH_CONCURRENCY` steps each (default 8) and a no-op executor, so the figures are the
//! engine's own cost: claim, attempt, events, unblocking, run completion. Then it drops the
//! scratch database.

use std::time::{Duration, Instant};

use berth_blueprint::Templates;
use berth_engine::{
    enqueue_run, Engine, EngineConfig, RetryPolicy, StepContext, StepError, StepExecutor,
    StepOutput,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

struct Noop;

impl StepExecutor for Noop {
    async fn execute(&self, _step: &StepContext) -> Result<StepOutput, StepError> {
        Ok(StepOutput::default())
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://berth:berth@127.0.0.1:5432/berth".into());
    let runs = env_usize("BENCH_RUNS", 200);
    let workers = env_usize("BENCH_WORKERS", 4);
    let concurrency = env_usize("BENCH_CONCURRENCY", 8);

    let admin_opts: PgConnectOptions = url.parse()?;
    let scratch = format!("berth_engine_bench_{}", std::process::id());
    let mut admin = PgConnection::connect_with(&admin_opts).await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let result = bench(
        admin_opts.clone().database(&scratch),
        runs,
        workers,
        concurrency,
    )
    .await;
    sqlx::query(&format!("DROP DATABASE {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

async fn bench(
    opts: PgConnectOptions,
    runs: usize,
    workers: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections((workers * (concurrency + 2)).min(90) as u32)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    let templates =
        Templates::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates"))?;
    let insight = templates.blueprint("insight").expect("insight").clone();

    let company = Uuid::new_v4();
    let user = Uuid::new_v4();
    let admin = Uuid::new_v4();
    sqlx::query("INSERT INTO companies (id, name, slug) VALUES ($1, 'Bench', 'bench')")
        .bind(company)
        .execute(&pool)
        .await?;
    for (id, roles) in [(user, "manager"), (admin, "admin")] {
        sqlx::query(
            "INSERT INTO users (id, issuer, subject, display_name, roles)
             VALUES ($1, 'bench', $1::text, 'Bench', ARRAY[$2])",
        )
        .bind(id)
        .bind(roles)
        .execute(&pool)
        .await?;
    }
    let seeded = Instant::now();
    for i in 0..runs {
        let env = Uuid::new_v4();
        let request = Uuid::new_v4();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint,
                                       size, status, created_by)
             VALUES ($1, $2, $3, $4, 'x@bench', 'insight', 'small', 'approved', $5)",
        )
        .bind(env)
        .bind(company)
        .bind(format!("Unit {i}"))
        .bind(format!("unit-{i}"))
        .bind(user)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO requests (id, environment_id, kind, spec, status, requested_by,
                                   decided_by, decided_at)
             VALUES ($1, $2, 'create', '{}', 'approved', $3, $4, now())",
        )
        .bind(request)
        .bind(env)
        .bind(user)
        .bind(admin)
        .execute(&mut *tx)
        .await?;
        enqueue_run(&mut tx, request, env, &insight, admin).await?;
        tx.commit().await?;
    }
    let enqueue_time = seeded.elapsed();

    let engines: Vec<Engine<Noop>> = (0..workers)
        .map(|_| {
            Engine::with_config(
                pool.clone(),
                Noop,
                EngineConfig {
                    concurrency,
                    heartbeat: Duration::from_secs(10),
                    retry: RetryPolicy::default(),
                    ..EngineConfig::default()
                },
            )
        })
        .collect();
    let started = Instant::now();
    let reports = futures_join(
        engines
            .iter()
            .cloned()
            .map(|e| async move { e.drain().await }),
    )
    .await;
    let wall = started.elapsed();
    let mut steps = 0;
    for (i, r) in reports.into_iter().enumerate() {
        let r = r?;
        println!("worker {i}: {r:?}");
        steps += r.succeeded;
    }
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE status <> 'succeeded'")
            .fetch_one(&pool)
            .await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;

    println!("berth-engine claim bench");
    println!("  runs: {runs} (7 steps each), workers: {workers} x concurrency {concurrency}");
    println!(
        "  enqueue: {:.1} ms per run (in its own transaction)",
        enqueue_time.as_secs_f64() * 1000.0 / runs as f64
    );
    println!("  drained {steps} steps in {:.2} s", wall.as_secs_f64());
    println!(
        "  throughput: {:.0} steps/s, {:.1} runs/s",
        steps as f64 / wall.as_secs_f64(),
        runs as f64 / wall.as_secs_f64()
    );
    println!(
        "  engine time per step: {:.2} ms in one of {} slots (claim + attempt + finish + events)",
        wall.as_secs_f64() * 1000.0 * (workers * concurrency) as f64 / steps.max(1) as f64,
        workers * concurrency
    );
    println!("  events written: {events}; runs not succeeded: {unfinished}");
    anyhow::ensure!(unfinished == 0, "{unfinished} runs did not finish");
    Ok(())
}

/// Joins futures without another dependency.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut n = 0;
    for (i, f) in futs.enumerate() {
        set.spawn(async move { (i, f.await) });
        n += 1;
    }
    let mut out: Vec<Option<F::Output>> = (0..n).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, v) = r.expect("worker task");
        out[i] = Some(v);
    }
    out.into_iter().map(|o| o.expect("joined")).collect()
}
