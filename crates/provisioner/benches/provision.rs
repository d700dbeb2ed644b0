//! Provisioning N environments at once through the real systems (figures, not a timed test).
//!
//! `tools/bench-engine.sh` runs it: the real [`Provisioner`], built from [`WorkerSettings`] as
//! the server builds it, with the AWS stage against the local emulator (`AWS_ENDPOINT_URL`,
//! required) and the Rancher stage against the simulator, started in this process on its own
//! runtime (threads named `rancher-sim`, so its CPU is told apart) with a fixed latency added to
//! every API call. `BENCH_REAL_RUNS` environments (default 50) are enqueued in a scratch
//! database (dropped at the end) — first five probe requests are planned one at a time (the
//! time one plan takes), then all of them are submitted at once and planned 8 at a time, then
//! approved — and `BENCH_WORKERS` engines (default 2) provision them.
//!
//! Per run, the critical path is the longest path through the run's DAG weighted by that run's
//! own measured step durations (`started_at`..`finished_at`), and the run's span is
//! `runs.started_at`..`runs.finished_at`: span / critical path is what the engine's scheduling
//! adds (polling, claiming, unblocking), whatever the emulator's speed under load. The
//! sequential (seed) time is the sum of the run's step durations. The simulator's Helm history
//! proves each release was installed exactly once per unit.
//!
//! Knobs: `BENCH_REAL_RUNS` (50), `BENCH_WORKERS` (2), `BENCH_SIM_LATENCY_MS` (50, per Rancher
//! API call), `BENCH_SIM_TIMINGS` (`realistic` or `fast`), `BENCH_RANCHER_POLL_MS` (250, the dev stack's; the product's is 2000),
//! `BENCH_ENGINE_POLL_MS` (1000, the worker's default), `BENCH_TIMEOUT_SECS` (1200),
//! `BENCH_PLANS_ONLY` (set: stop after the planning figures).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_provisioner::WorkerSettings;
use berth_rancher_sim::{Action, ClusterResources, Faults, RancherSim, SimConfig, Timings};
use berth_runs::testing as common;
use berth_runs::{
    latest_run, steps_of_run, Engine, EngineConfig, PlanWorker, PlanWorkerConfig, RunStatus,
    StepKind, StepView,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time from a Linux `stat` file (100 ticks per second).
fn cpu_of(stat_path: &str) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let comm = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((comm, Duration::from_millis(ticks * 10)))
}

/// CPU of the whole process and of the simulator's threads (those named `rancher-sim`).
fn cpu_split() -> Option<(Duration, Duration)> {
    let (_, process) = cpu_of("/proc/self/stat")?;
    let mut sim = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path().join("stat");
        if let Some((comm, cpu)) = cpu_of(&path.to_string_lossy()) {
            if comm == "rancher-sim" {
                sim += cpu;
            }
        }
    }
    Some((process, sim))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or_default()
}

/// Critical path (longest path, each step weighted by its own measured duration) and the sum of
/// the durations (the seed's one-after-another order). Steps come in plan order, which is
/// topological.
fn measured_paths(steps: &[StepView]) -> anyhow::Result<(Duration, Duration)> {
    let mut finish: HashMap<&str, Duration> = HashMap::new();
    let mut sequential = Duration::ZERO;
    for s in steps {
        let (Some(a), Some(b)) = (s.started_at, s.finished_at) else {
            anyhow::bail!("step {} has no start or finish time", s.name);
        };
        let took = between(a, b);
        let ready = s
            .depends_on
            .iter()
            .map(|d| finish.get(d.as_str()).copied().unwrap_or_default())
            .max()
            .unwrap_or_default();
        finish.insert(&s.name, ready + took);
        sequential += took;
    }
    Ok((
        finish.values().copied().max().unwrap_or_default(),
        sequential,
    ))
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` lists or runs benches with no arguments we need; do nothing then.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,aws_smithy_runtime=error,aws_config=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let latency = env_u64("BENCH_SIM_LATENCY_MS", 50);
    let timings = match std::env::var("BENCH_SIM_TIMINGS").as_deref() {
        Ok("fast") => Timings::fast(),
        Ok("realistic") | Err(_) => Timings::realistic(),
        Ok(other) => anyhow::bail!("BENCH_SIM_TIMINGS: expected realistic or fast, got {other}"),
    };
    // The simulator gets its own runtime, so its threads (and their CPU) are its own.
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("rancher-sim")
        .enable_all()
        .build()?;
    // A cluster with room for every environment at once: the bench times the engine, and the
    // default (64 CPUs) fits fewer than 50 small units, so approvals past it would need the
    // capacity override.
    let mut roomy = ClusterResources::new("1024", "4Ti");
    for list in [&mut roomy.capacity, &mut roomy.allocatable] {
        list.insert("pods".into(), "100000".into());
    }
    let sim = sim_rt.block_on(RancherSim::start(SimConfig {
        timings: timings.clone(),
        cluster_resources: roomy,
        ..SimConfig::default()
    }))?;
    sim.set_faults(Faults {
        request_latency_ms: latency,
        ..Faults::default()
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&sim, latency, &timings));
    drop(sim);
    sim_rt.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn run(sim: &RancherSim, latency: u64, timings: &Timings) -> anyhow::Result<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
        anyhow::anyhow!(
            "AWS_ENDPOINT_URL is not set: start the emulator (tools/aws-emulator/start.sh) or use tools/bench-engine.sh"
        )
    })?;
    anyhow::ensure!(
        berth_testkit::emulator::emulator_available("provision bench"),
        "the AWS emulator does not answer at {endpoint}"
    );
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://berth:berth@127.0.0.1:5432/berth".into());
    let admin_opts: PgConnectOptions = url.parse()?;
    let scratch = format!("berth_engine_provision_bench_{}", std::process::id());
    let mut admin = PgConnection::connect_with(&admin_opts).await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let result = bench(admin_opts.clone().database(&scratch), sim, latency, timings).await;
    sqlx::query(&format!("DROP DATABASE {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

/// The settings a worker would read from its environment, pointed at the simulator; AWS from
/// the standard variables.
fn settings(sim: &RancherSim) -> anyhow::Result<WorkerSettings> {
    let mut vars: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    for (k, v) in [
        ("BERTH_RANCHER_URL", sim.url()),
        ("BERTH_RANCHER_TOKEN", sim.admin_token().to_owned()),
        ("BERTH_DOMAIN", "apps.seaview.example".into()),
        ("BERTH_REGISTRY_SERVER", "registry.seaview.example".into()),
        ("BERTH_REGISTRY_USERNAME", "puller".into()),
        ("BERTH_REGISTRY_PASSWORD", "bench-registry-password".into()),
        (
            "BERTH_RANCHER_POLL_MS",
            env_u64("BENCH_RANCHER_POLL_MS", 250).to_string(),
        ),
        (
            "BERTH_ENGINE_POLL_MS",
            env_u64("BENCH_ENGINE_POLL_MS", 1000).to_string(),
        ),
    ] {
        vars.insert(k.into(), v);
    }
    WorkerSettings::from_lookup(|k| vars.get(k).cloned())
        .map_err(|p| anyhow::anyhow!("worker settings: {}", p.0.join("; ")))
}

async fn bench(
    opts: PgConnectOptions,
    sim: &RancherSim,
    latency: u64,
    timings: &Timings,
) -> anyhow::Result<()> {
    let runs = env_u64("BENCH_REAL_RUNS", 50) as usize;
    let workers = env_u64("BENCH_WORKERS", 2).max(1) as usize;
    let timeout = Duration::from_secs(env_u64("BENCH_TIMEOUT_SECS", 1200));
    // Connections are held for database work only, never across a call to AWS or Rancher.
    let pool = PgPoolOptions::new()
        .max_connections(40)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(opts)
        .await?;
    common::MIGRATOR.run(&pool).await?;

    // Unit slugs unique to this bench run: the emulator may outlive it.
    let company = common::seed_company(&pool, "seaview", "SeaView").await;
    let settings = settings(sim)?;
    let templates = Arc::new(common::templates());
    let planner = Arc::new(
        settings
            .provisioner(templates.clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?,
    );

    // Plans: five alone, one after another (the time an admin waits for one), then all
    // `BENCH_REAL_RUNS` requests submitted at once and planned 8 at a time.
    let one_at_a_time = PlanWorker::new(
        pool.clone(),
        planner.clone(),
        PlanWorkerConfig {
            concurrency: 1,
            ..PlanWorkerConfig::default()
        },
    );
    let mut single = Vec::new();
    for _ in 0..5 {
        let slug = common::unique_slug();
        common::submitted_env(&pool, &company, &slug, &format!("Probe {}", &slug[5..])).await;
        let t = Instant::now();
        one_at_a_time.tick().await?;
        single.push(t.elapsed());
    }
    single.sort();
    let mut envs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let slug = common::unique_slug();
        let name = format!("Bench {}", &slug[5..]);
        envs.push(common::submitted_env(&pool, &company, &slug, &name).await);
    }
    let batch = Instant::now();
    PlanWorker::new(pool.clone(), planner.clone(), PlanWorkerConfig::default())
        .drain()
        .await?;
    let batch = batch.elapsed();
    let failed_plans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM plans WHERE status <> 'ready'")
            .fetch_one(&pool)
            .await?;
    println!(
        "plans: one alone median {:.0} ms (min {:.0}, max {:.0}, 5 runs); {runs} submitted at once \
         planned in {:.1} s, 8 at a time ({failed_plans} not ready)",
        single[2].as_secs_f64() * 1000.0,
        single[0].as_secs_f64() * 1000.0,
        single[4].as_secs_f64() * 1000.0,
        batch.as_secs_f64()
    );
    if std::env::var_os("BENCH_PLANS_ONLY").is_some() {
        return Ok(());
    }
    let mut approved = Vec::with_capacity(runs);
    for env in envs {
        let run = common::plan_and_approve(&pool, &company, &env, planner.clone()).await;
        approved.push((env, run));
    }
    let envs = approved;

    // Enough slots for every step that can run at once (two roots per run).
    let concurrency = (2 * runs).div_ceil(workers).max(1);
    let mut engines = Vec::new();
    for _ in 0..workers {
        let provisioner = settings
            .provisioner(templates.clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        engines.push(Engine::with_config(
            pool.clone(),
            provisioner,
            EngineConfig {
                concurrency,
                ..settings.engine.clone()
            },
        ));
    }

    let db_start: OffsetDateTime = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&pool)
        .await?;
    let cpu_before = cpu_split();
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for engine in engines {
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
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')",
        )
        .fetch_one(&pool)
        .await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > timeout {
            tracing::error!(left, "runs did not finish within BENCH_TIMEOUT_SECS");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let cpu_after = cpu_split();
    stop.send(true)?;
    while let Some(r) = tasks.join_next().await {
        r??;
    }

    // Per run: its own critical path, span, sequential time; per kind: mean step duration.
    let mut critical = Vec::new();
    let mut ratios = Vec::new();
    let mut sequential = Vec::new();
    let mut spans = Vec::new();
    let mut start_delays = Vec::new();
    let mut by_kind: BTreeMap<&'static str, (Duration, u32)> = BTreeMap::new();
    let mut retried = 0;
    let mut failed = Vec::new();
    for (env, run) in &envs {
        let steps = steps_of_run(&pool, *run).await?;
        let view = latest_run(&pool, env.environment_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run {run:?} vanished"))?;
        if view.status != RunStatus::Succeeded {
            failed.push((*run, view.status, view.error.clone(), steps));
            continue;
        }
        let (cp, seq) = measured_paths(&steps)?;
        let (Some(a), Some(b)) = (view.started_at, view.finished_at) else {
            anyhow::bail!("run {run:?} succeeded without start or finish time");
        };
        let span = between(a, b);
        critical.push(cp);
        sequential.push(seq);
        spans.push(span);
        ratios.push(span.as_secs_f64() / cp.as_secs_f64());
        start_delays.push(between(db_start, a));
        for s in &steps {
            retried += usize::from(s.attempts > 1);
            let kind = match s.kind {
                StepKind::EnsureStack => "stack",
                StepKind::EnsureNamespace => "namespace",
                StepKind::ReadSecrets => "secrets",
                StepKind::DeployChart => "chart",
                // A create run has none of these; counted apart should one appear.
                StepKind::Rollback
                | StepKind::UninstallChart
                | StepKind::RemoveNamespace
                | StepKind::DeleteStack
                | StepKind::ProveRemoved => "other",
            };
            let e = by_kind.entry(kind).or_default();
            e.0 += between(s.started_at.unwrap(), s.finished_at.unwrap());
            e.1 += 1;
        }
    }
    for (run, status, error, steps) in &failed {
        tracing::error!(?run, ?status, ?error, "run did not succeed");
        for s in steps.iter().filter(|s| s.error.is_some()) {
            tracing::error!(step = %s.name, error = ?s.error, "step error");
        }
    }
    let ok = spans.len();

    // Each (namespace, release) installed exactly once, never upgraded.
    let mut releases: BTreeMap<(String, String), Vec<Action>> = BTreeMap::new();
    for h in sim.helm_history() {
        releases
            .entry((h.namespace, h.release))
            .or_default()
            .push(h.action);
    }
    let installs = releases
        .values()
        .flatten()
        .filter(|a| matches!(a, Action::Install))
        .count();
    let not_once = releases
        .values()
        .filter(|a| !matches!(a.as_slice(), [Action::Install]))
        .count();
    let charts = common::insight().apps().len();

    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / (v.len().max(1) as u32);
    let max = |v: &[Duration]| v.iter().copied().max().unwrap_or_default();
    println!(
        "berth-provisioner provisioning bench (real Provisioner: AWS emulator + Rancher simulator)"
    );
    println!(
        "  runs: {runs} at once ({ok} succeeded, {} not), workers: {workers} x concurrency {concurrency}",
        failed.len()
    );
    println!(
        "  simulator: {latency} ms per API call, timings {} (namespace {} ms, helm wait+run+ready {} ms); Rancher poll {} ms; engine poll {} ms",
        if *timings == Timings::realistic() { "realistic" } else { "fast" },
        timings.namespace_activate.as_millis(),
        (timings.operation_wait + timings.operation_run + timings.helm_ready).as_millis(),
        settings.rancher_poll.as_millis(),
        settings.engine.poll_interval.as_millis(),
    );
    println!(
        "  wall time, all {runs}: {:.0} ms; longest critical path: {:.0} ms; ratio {:.3}",
        ms(wall),
        ms(max(&critical)),
        wall.as_secs_f64() / max(&critical).as_secs_f64()
    );
    println!(
        "  critical path per run (own measured steps): mean {:.0} ms, max {:.0} ms",
        ms(mean(&critical)),
        ms(max(&critical))
    );
    println!(
        "  run span (first claim to finish): mean {:.0} ms, max {:.0} ms; wait before first claim: mean {:.0} ms, max {:.0} ms",
        ms(mean(&spans)),
        ms(max(&spans)),
        ms(mean(&start_delays)),
        ms(max(&start_delays))
    );
    let ratio_mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    let ratio_worst = ratios.iter().copied().fold(0.0, f64::max);
    println!("  ratio span / critical path per run: mean {ratio_mean:.3}, worst {ratio_worst:.3} (target <= 1.05)");
    println!(
        "  sequential (seed) order, sum of a run's steps: mean {:.0} ms ({:.2}x its critical path)",
        ms(mean(&sequential)),
        mean(&sequential).as_secs_f64() / mean(&critical).as_secs_f64()
    );
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, (d, n))| format!("{k} {:.0}", ms(*d / (*n).max(1))))
        .collect();
    println!(
        "  mean step duration (ms): {}; steps retried: {retried}",
        kinds.join(", ")
    );
    match cpu_before.zip(cpu_after) {
        Some(((p0, s0), (p1, s1))) => {
            let sim_cpu = s1.saturating_sub(s0);
            let rest = p1.saturating_sub(p0).saturating_sub(sim_cpu);
            println!(
                "  CPU per run: engine + Provisioner (AWS SDK, Rancher client) {:.1} ms; in-process simulator {:.1} ms (emulator and Postgres not counted)",
                ms(rest) / runs as f64,
                ms(sim_cpu) / runs as f64
            );
        }
        None => println!("  CPU: not available on this platform"),
    }
    println!(
        "  simulator Helm history: {installs} installs for {} releases (expected {}), releases not installed exactly once: {not_once}",
        releases.len(),
        runs * charts
    );
    let counters = sim.counters();
    let calls: Vec<String> = counters
        .iter()
        .filter(|(k, _)| k.as_str() != "total")
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!(
        "  simulator calls: {} in all ({:.0} per run): {}",
        counters.get("total").copied().unwrap_or(0),
        counters.get("total").copied().unwrap_or(0) as f64 / runs as f64,
        calls.join(", ")
    );

    anyhow::ensure!(failed.is_empty(), "{} runs did not succeed", failed.len());
    anyhow::ensure!(
        not_once == 0 && releases.len() == runs * charts,
        "releases were not installed exactly once each"
    );
    Ok(())
}
