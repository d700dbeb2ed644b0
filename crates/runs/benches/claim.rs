//! Claiming throughput of the engine (figures, not a timed test).
//!
//! `cargo bench -p berth-runs --bench claim` with `DATABASE_URL` pointing at a Postgres role
//! that may create databases. It creates a scratch database, enqueues `BENCH_RUNS` insight runs
//! (default 200, 7 steps each), drains them with `BENCH_WORKERS` engines (default 4) of
//! `BENCH_CONCURRENCY` steps each (default 8) and a no-op executor, so the figures are the
//! engine's own cost: claim, attempt, events, unblocking, run completion.
//!
//! A second phase measures scheduling against the DAG: `BENCH_CP_RUNS` runs (default 50)
//! provisioned at once by workers in `run_until`, each step sleeping a fixed latency per kind
//! (stack 2 s, namespace 1 s, secrets 200 ms, chart 1.5 s; `BENCH_LATENCY_SCALE` scales them). It prints the wall time, the
//! DAG's critical path, their ratio (1.0 is perfect), the sequential (seed) time of one run for
//! comparison, and this process's CPU time per run. The external systems are replaced by
//! sleeps so the figures show the engine, not the emulator. Both phases use scratch databases,
//! dropped at the end.

use std::time::{Duration, Instant};

use berth_blueprint::Blueprint;
use berth_blueprint::Templates;
use berth_db::MIGRATOR;
use berth_runs::{
    enqueue_run, plan_steps, Engine, EngineConfig, StepContext, StepError, StepExecutor, StepKind,
    StepOutput, StepRetries,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

struct Noop;

/// Sleeps a fixed time per step kind: stands in for the external systems.
struct Latency;

/// Per-kind latency in ms, scaled by `BENCH_LATENCY_SCALE` (default 1.0): close to the
/// simulator's realistic timings and a small CloudFormation stack.
fn latency(kind: StepKind) -> Duration {
    let ms = match kind {
        StepKind::EnsureStack => 2000.0,
        StepKind::EnsureNamespace => 1000.0,
        StepKind::ReadSecrets => 200.0,
        StepKind::DeployChart | StepKind::Rollback | StepKind::UninstallChart => 1500.0,
        StepKind::RemoveNamespace => 1000.0,
        StepKind::DeleteStack => 2000.0,
        StepKind::ProveRemoved => 500.0,
    };
    let scale: f64 = std::env::var("BENCH_LATENCY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(ms * scale / 1000.0)
}

impl StepExecutor for Latency {
    async fn execute(&self, step: &StepContext) -> Result<StepOutput, StepError> {
        tokio::time::sleep(latency(step.kind)).await;
        Ok(StepOutput::default())
    }
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, 100 ticks per second).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

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
    result?;

    let cp_runs = env_usize("BENCH_CP_RUNS", 50);
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let result = critical_path(admin_opts.clone().database(&scratch), cp_runs, workers).await;
    sqlx::query(&format!("DROP DATABASE {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

/// Creates a company and `runs` approved environments with enqueued runs.
async fn seed(pool: &PgPool, blueprint: &Blueprint, runs: usize) -> anyhow::Result<Duration> {
    let company = Uuid::new_v4();
    let user = Uuid::new_v4();
    let admin = Uuid::new_v4();
    sqlx::query("INSERT INTO companies (id, name, slug) VALUES ($1, 'Bench', 'bench')")
        .bind(company)
        .execute(pool)
        .await?;
    for (id, roles) in [(user, "manager"), (admin, "admin")] {
        sqlx::query(
            "INSERT INTO users (id, issuer, subject, display_name, roles)
             VALUES ($1, 'bench', $1::text, 'Bench', ARRAY[$2])",
        )
        .bind(id)
        .bind(roles)
        .execute(pool)
        .await?;
    }
    let started = Instant::now();
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
        enqueue_run(&mut tx, request, env, blueprint, admin, None).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// The longest path through the run's DAG with [`latency`] per step.
fn dag_critical_path(blueprint: &Blueprint) -> (Duration, Duration) {
    let steps = plan_steps(blueprint, &StepRetries::default());
    let mut finish: std::collections::HashMap<&str, Duration> = Default::default();
    let mut sequential = Duration::ZERO;
    for s in &steps {
        let start = s
            .depends_on
            .iter()
            .map(|d| finish[d.as_str()])
            .max()
            .unwrap_or_default();
        finish.insert(&s.name, start + latency(s.kind));
        sequential += latency(s.kind);
    }
    (
        finish.values().copied().max().unwrap_or_default(),
        sequential,
    )
}

async fn critical_path(opts: PgConnectOptions, runs: usize, workers: usize) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(60)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    let templates =
        Templates::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates"))?;
    let insight = templates.blueprint("insight").expect("insight").clone();
    seed(&pool, &insight, runs).await?;
    let (critical, sequential) = dag_critical_path(&insight);

    // Enough slots for every step that can run at once (two roots per run).
    let concurrency = (2 * runs).div_ceil(workers.max(1)).max(1);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let engine = Engine::with_config(
            pool.clone(),
            Latency,
            EngineConfig {
                concurrency,
                poll_interval: Duration::from_millis(50),
                ..EngineConfig::default()
            },
        );
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            engine
                .run_until(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
    }
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status <> 'succeeded'")
            .fetch_one(&pool)
            .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "runs did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = started.elapsed();
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    stop.send(true)?;
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!("berth-runs critical-path bench");
    println!(
        "  runs: {runs} at once, workers: {workers} x concurrency {concurrency}, step latencies (ms): stack {}, namespace {}, secrets {}, chart {}",
        latency(StepKind::EnsureStack).as_millis(),
        latency(StepKind::EnsureNamespace).as_millis(),
        latency(StepKind::ReadSecrets).as_millis(),
        latency(StepKind::DeployChart).as_millis(),
    );
    println!("  wall time: {:.0} ms", wall.as_secs_f64() * 1000.0);
    println!(
        "  critical path of the DAG: {:.0} ms",
        critical.as_secs_f64() * 1000.0
    );
    println!(
        "  ratio wall / critical path: {:.3} (target <= 1.05)",
        wall.as_secs_f64() / critical.as_secs_f64()
    );
    println!(
        "  sequential (seed) order, one run: {:.0} ms; all runs one after another: {:.1} s",
        sequential.as_secs_f64() * 1000.0,
        sequential.as_secs_f64() * runs as f64
    );
    match cpu {
        Some(cpu) => println!(
            "  engine CPU (this process): {:.1} ms per run",
            cpu.as_secs_f64() * 1000.0 / runs as f64
        ),
        None => println!("  engine CPU: not available on this platform"),
    }
    Ok(())
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

    let enqueue_time = seed(&pool, &insight, runs).await?;

    let engines: Vec<Engine<Noop>> = (0..workers)
        .map(|_| {
            Engine::with_config(
                pool.clone(),
                Noop,
                EngineConfig {
                    concurrency,
                    heartbeat: Duration::from_secs(10),
                    retry: StepRetries::default(),
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

    println!("berth-runs claim bench");
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
