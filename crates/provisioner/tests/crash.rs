//! Crash safety with real processes: the `berth-engine-worker` binary (the real Provisioner)
//! is killed with SIGKILL while a chart is being installed and again between steps, then two
//! worker processes finish the run together. The simulator's counters must show every chart
//! installed exactly once. Needs the AWS emulator (skipped with a notice when absent, failing
//! when `CI=true`); the Rancher simulator runs in this test process, outliving the workers.

use std::process::Stdio;
use std::time::Duration;

use berth_rancher_sim::{Action, RancherSim, SimConfig, Timings};
use berth_runs::testing::*;
use berth_runs::{run_status, steps_of_run, RunId, RunStatus, StepStatus};

mod common;
use berth_testkit::emulator::{emulator_available, endpoint};
use sqlx::PgPool;
use tokio::process::{Child, Command};

fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db = pool
        .connect_options()
        .get_database()
        .expect("test database name")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("DATABASE_URL has a database");
    format!("{server}/{db}")
}

fn worker(db_url: &str, sim: &RancherSim) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-engine-worker"));
    cmd.env("DATABASE_URL", db_url)
        .env("BERTH_RANCHER_URL", sim.url())
        .env("BERTH_RANCHER_TOKEN", sim.admin_token())
        .env("BERTH_RANCHER_POLL_MS", "20")
        .env("BERTH_DOMAIN", "apps.seaview.example")
        .env("BERTH_REGISTRY_SERVER", "registry.seaview.example")
        .env("BERTH_REGISTRY_USERNAME", "puller")
        .env("BERTH_REGISTRY_PASSWORD", common::REGISTRY_PASSWORD)
        .env("BERTH_TEMPLATES", templates_dir())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env(
            "AWS_REGION",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into()),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Takeovers happen only when this test moves the dead worker's lease into the past.
        .env("BERTH_ENGINE_LEASE_MS", "600000")
        .env("BERTH_ENGINE_HEARTBEAT_MS", "200")
        .env("BERTH_ENGINE_POLL_MS", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    }
    cmd.spawn().expect("worker starts")
}

async fn kill(mut child: Child) {
    // tokio's kill() sends SIGKILL on Unix: no shutdown path runs.
    child.kill().await.expect("SIGKILL");
}

async fn step_status(pool: &PgPool, run: RunId, name: &str) -> StepStatus {
    steps_of_run(pool, run)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
        .status
}

/// Waits (bounded, as a hang guard only) until `cond` holds: up to two minutes, 10 ms apart.
async fn until<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    berth_testkit::until(what, 12_000, Duration::from_millis(10), cond).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn sigkilled_workers_resume_and_two_processes_finish_without_duplicate_effects(pool: PgPool) {
    if !emulator_available(
        "sigkilled_workers_resume_and_two_processes_finish_without_duplicate_effects",
    ) {
        return;
    }
    // Installs take long enough (about a second) to be killed in the middle of one.
    let sim = RancherSim::start(SimConfig {
        timings: Timings {
            operation_run: Duration::from_millis(800),
            helm_ready: Duration::from_millis(300),
            ..Timings::fast()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let env = submitted_env(&pool, &company, &slug, &format!("Crash {}", &slug[5..])).await;
    let run = plan_and_approve(
        &pool,
        &company,
        &env,
        common::provisioner(common::aws_stage().await, common::rancher(&sim)),
    )
    .await;
    let db = database_url(&pool);
    let installs = || sim.count("POST clusterrepo action=install");

    // 1. Killed while certs is being installed (its Helm operation is running in "Rancher").
    let w1 = worker(&db, &sim);
    until("certs to be installing", || async {
        step_status(&pool, run, "chart:certs").await == StepStatus::Running && installs() >= 2
    })
    .await;
    kill(w1).await;
    time_travel(&pool).await;

    // 2. Killed between steps: right after influxdb is recorded as done.
    let w2 = worker(&db, &sim);
    until("influxdb to succeed", || async {
        step_status(&pool, run, "chart:influxdb").await == StepStatus::Succeeded
    })
    .await;
    kill(w2).await;
    time_travel(&pool).await;

    // 3. Two worker processes on the same database finish the run.
    let w3 = worker(&db, &sim);
    let w4 = worker(&db, &sim);
    until("the run to finish", || async {
        matches!(
            run_status(&pool, run).await.unwrap(),
            RunStatus::Succeeded | RunStatus::Failed
        )
    })
    .await;
    kill(w3).await;
    kill(w4).await;

    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(
        run_status(&pool, run).await.unwrap(),
        RunStatus::Succeeded,
        "{steps:#?}"
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Succeeded));

    // Every chart installed exactly once, in dependency order; nothing upgraded or repeated.
    let namespace = format!("seaview-{slug}");
    let history: Vec<(String, Action)> = sim
        .helm_history()
        .into_iter()
        .filter(|h| h.namespace == namespace)
        .map(|h| (h.release, h.action))
        .collect();
    assert_eq!(
        history.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        ["foundation", "certs", "influxdb", "dsm"],
        "{history:?}"
    );
    assert!(history.iter().all(|h| matches!(h.1, Action::Install)));
    assert_eq!(installs(), 4);
    assert_eq!(sim.count("POST clusterrepo action=upgrade"), 0);

    // The kill in flight cost certs one attempt, taken over by the next worker.
    let certs = steps.iter().find(|s| s.name == "chart:certs").unwrap();
    assert_eq!(certs.attempts, 2);
    let lost: i64 =
        sqlx::query_scalar("SELECT count(*) FROM step_attempts WHERE outcome = 'lease_lost'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(lost >= 1);
    assert_eq!(events(&pool, &env, "run.succeeded").await.len(), 1);
}

/// Each Helm action the simulator ran on the unit's releases: (release, "install" | "upgrade" |
/// "rollback" | "uninstall").
fn helm_actions(sim: &RancherSim, namespace: &str) -> Vec<(String, &'static str)> {
    sim.helm_history()
        .into_iter()
        .filter(|h| h.namespace == namespace)
        .map(|h| {
            let what = match h.action {
                Action::Install => "install",
                Action::Upgrade if h.description.starts_with("Rollback to ") => "rollback",
                Action::Upgrade => "upgrade",
                Action::Rollback => "rollback",
                Action::Uninstall => "uninstall",
            };
            (h.release, what)
        })
        .collect()
}

fn count(actions: &[(String, &str)], release: &str, what: &str) -> usize {
    actions
        .iter()
        .filter(|(r, w)| r == release && *w == what)
        .count()
}

/// Runs `run` to its end with worker processes killed (SIGKILL) at `kill_when`, then one more
/// worker pair to finish it.
async fn finish_with_a_kill<F, Fut>(
    pool: &PgPool,
    sim: &RancherSim,
    run: RunId,
    what: &str,
    kill_when: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let db = database_url(pool);
    let w = worker(&db, sim);
    until(what, kill_when).await;
    kill(w).await;
    time_travel(pool).await;
    let a = worker(&db, sim);
    let b = worker(&db, sim);
    until("the run to finish", || async {
        !run_status(pool, run).await.unwrap().is_live()
    })
    .await;
    kill(a).await;
    kill(b).await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn upgrades_rollbacks_and_removals_resume_after_sigkill_without_repeating(pool: PgPool) {
    if !emulator_available("upgrades_rollbacks_and_removals_resume_after_sigkill_without_repeating")
    {
        return;
    }
    let sim = RancherSim::start(SimConfig {
        timings: Timings {
            operation_run: Duration::from_millis(800),
            helm_ready: Duration::from_millis(300),
            ..Timings::fast()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let slug = unique_slug();
    let name = format!("Crash {}", &slug[5..]);
    let namespace = format!("seaview-{slug}");
    let p = std::sync::Arc::new(common::provisioner(
        common::aws_stage().await,
        common::rancher(&sim),
    ));
    let env = submitted_env(&pool, &company, &slug, &name).await;
    plan_and_approve(&pool, &company, &env, p.clone()).await;
    berth_runs::Engine::with_config(pool.clone(), p.clone(), config())
        .drain()
        .await
        .unwrap();
    let manager = actor(&company, false);

    // A change to a larger size whose DSM upgrade fails: killed while influxdb is upgrading,
    // and again while the rollback runs.
    sim.update_faults(|f| {
        f.fail_upgrades.insert(
            "dsm".into(),
            "Error: UPGRADE FAILED: dsm pods crash-looping".into(),
        );
    });
    let sub = berth_runs::lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &berth_domain::ChangeForm {
            name: Some(name.clone()),
            slug: Some(slug.clone()),
            description: String::new(),
            owner_contact: "dana@seaview.example".into(),
            size: "large".into(),
            blueprint_version: String::new(),
            overrides: Default::default(),
        },
    )
    .await
    .unwrap();
    let change = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(&pool, &company, &change, p.clone()).await;
    let upgrades = || sim.count("POST clusterrepo action=upgrade");
    let db = database_url(&pool);
    let w = worker(&db, &sim);
    until("influxdb to be upgrading", || async {
        step_status(&pool, run, "chart:influxdb").await == StepStatus::Running && upgrades() >= 2
    })
    .await;
    kill(w).await;
    time_travel(&pool).await;
    finish_with_a_kill(&pool, &sim, run, "the rollback to be running", || async {
        steps_of_run(&pool, run)
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == "rollback" && s.status == StepStatus::Running)
            && sim.count("helm rollback") >= 1
    })
    .await;
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(
        run_status(&pool, run).await.unwrap(),
        RunStatus::Failed,
        "{steps:#?}"
    );
    let rollback = steps.iter().find(|s| s.name == "rollback").unwrap();
    assert_eq!(rollback.status, StepStatus::Succeeded, "{rollback:#?}");
    let actions = helm_actions(&sim, &namespace);
    for app in ["foundation", "influxdb", "dsm"] {
        assert_eq!(
            count(&actions, app, "upgrade"),
            1,
            "{app} upgraded once: {actions:?}"
        );
        assert_eq!(
            count(&actions, app, "rollback"),
            1,
            "{app} rolled back once: {actions:?}"
        );
    }
    assert_eq!(
        count(&actions, "certs", "upgrade"),
        0,
        "certs did not change: {actions:?}"
    );
    sim.update_faults(|f| f.fail_upgrades.clear());

    // A decommission killed while dsm is being removed.
    let sub =
        berth_runs::lifecycle::submit_decommission(&pool, env.environment_id, &manager, &name)
            .await
            .unwrap();
    let retire = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(&pool, &company, &retire, p.clone()).await;
    finish_with_a_kill(&pool, &sim, run, "dsm to be uninstalling", || async {
        step_status(&pool, run, "uninstall:dsm").await == StepStatus::Running
            && sim.count("helm uninstall") >= 1
    })
    .await;
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(
        run_status(&pool, run).await.unwrap(),
        RunStatus::Succeeded,
        "{steps:#?}"
    );
    let actions = helm_actions(&sim, &namespace);
    for app in ["foundation", "certs", "influxdb", "dsm"] {
        assert_eq!(
            count(&actions, app, "uninstall"),
            1,
            "{app} removed once: {actions:?}"
        );
    }
    let deletion = steps.iter().find(|s| s.name == "delete_stack").unwrap();
    assert_eq!(
        deletion.output.as_ref().unwrap()["stack"]["outcome"],
        "deleted",
        "one stack deletion, by this step's only attempt: {deletion:#?}"
    );
    assert_eq!(deletion.attempts, 1);
    assert_eq!(events(&pool, &retire, "decommissioned").await.len(), 1);
}
