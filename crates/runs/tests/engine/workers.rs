//! Workers: a full run, parallel steps, two engines on one database, leases taken over or lost,
//! `run_until` and its shutdown hand-back.

use std::collections::HashMap;
use std::time::Duration;

use berth_domain::RequestStatus;
use berth_runs::testing::*;
use berth_runs::{
    run_status, steps_of_run, AttemptOutcome, Engine, RunStatus, StepRetries, StepStatus,
};
use berth_testkit::until;
use sqlx::PgPool;

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_run_completes_each_step_once_and_records_every_transition(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let exec = TestExecutor::new();
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());

    let report = engine.drain().await.unwrap();
    assert_eq!(report.claimed, 7);
    assert_eq!(report.succeeded, 7);
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert!(steps.iter().all(|s| s.status == StepStatus::Succeeded
        && s.attempts == 1
        && s.finished_at.is_some()
        && s.blocked_reason.is_none()));
    assert!(steps[6].log.contains("[attempt 1] chart:dsm done"));
    assert_eq!(steps[6].output.as_ref().unwrap()["by"], "chart:dsm");

    // Each step once, after its dependencies, seeing their outputs.
    let calls = exec.calls();
    assert_eq!(calls.len(), 7);
    let order: HashMap<&str, usize> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    for s in &steps {
        for d in &s.depends_on {
            assert!(
                order[d.as_str()] < order[s.name.as_str()],
                "{d} before {}",
                s.name
            );
        }
    }
    let certs = calls.iter().find(|c| c.name == "chart:certs").unwrap();
    assert!(certs.saw_outputs.contains(&"chart:foundation".to_string()));
    assert_eq!(certs.idempotency_key, format!("{}:1", certs.step_id));

    assert_eq!(
        request_status(&pool, &env).await,
        (RequestStatus::Ready, RequestStatus::Ready)
    );
    let kinds = event_kinds(&pool, &env).await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(kinds.first().map(String::as_str), Some("run.enqueued"));
    assert_eq!(count("run.started"), 1);
    assert_eq!(count("request.provisioning"), 1);
    assert_eq!(count("step.started"), 7);
    assert_eq!(count("step.succeeded"), 7);
    assert_eq!(count("run.succeeded"), 1);
    assert_eq!(kinds.last().map(String::as_str), Some("request.ready"));
    let started = kinds.iter().position(|k| k == "run.started").unwrap();
    let first_step = kinds.iter().position(|k| k == "step.started").unwrap();
    assert!(started < first_step, "{kinds:?}");

    // Attempts are recorded with their keys.
    let attempts: Vec<(String, AttemptOutcome)> =
        sqlx::query_as("SELECT idempotency_key, outcome FROM step_attempts ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 7);
    assert!(attempts
        .iter()
        .all(|(_, o)| *o == AttemptOutcome::Succeeded));

    // Nothing left to do.
    assert_eq!(engine.drain().await.unwrap().claimed, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn independent_steps_run_in_parallel(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &fork_blueprint(), &quick_retry()).await;
    // Each pair passes its barrier only when both of its steps run at the same time.
    let roots = TestExecutor::new().barrier(&["ensure_stack", "ensure_namespace"]);
    let engine = Engine::with_config(pool.clone(), roots.clone(), config());
    let first = tokio::time::timeout(Duration::from_secs(60), engine.tick())
        .await
        .expect("the two root steps ran at once")
        .unwrap();
    assert_eq!(first.claimed, 2);

    let forks = TestExecutor::sharing(&roots).barrier(&["chart:left", "chart:right"]);
    let engine = Engine::with_config(pool.clone(), forks, config());
    tokio::time::timeout(Duration::from_secs(60), engine.drain())
        .await
        .expect("left and right ran at once")
        .unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(roots.calls().len(), 6);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn two_engines_share_the_work_and_never_run_a_step_twice(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let mut runs = Vec::new();
    for i in 0..8 {
        let env = approved_env(&pool, &company, &format!("unit-{i}"), &format!("Unit {i}")).await;
        runs.push(enqueue(&pool, &env, &company, &insight(), &quick_retry()).await);
    }
    let a_exec = TestExecutor::new().pausing(Duration::from_millis(3));
    let b_exec = TestExecutor::sharing(&a_exec).pausing(Duration::from_millis(3));
    let a = Engine::with_config(pool.clone(), a_exec.clone(), config());
    let b = Engine::with_config(pool.clone(), b_exec, config());
    let (ra, rb) = tokio::join!(a.drain(), b.drain());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.claimed + rb.claimed, 8 * 7, "{ra:?} {rb:?}");
    assert_eq!(ra.lease_lost + rb.lease_lost, 0);

    for run in &runs {
        assert_eq!(run_status(&pool, *run).await.unwrap(), RunStatus::Succeeded);
    }
    let calls = a_exec.calls();
    assert_eq!(calls.len(), 8 * 7);
    let mut per_step: HashMap<uuid::Uuid, usize> = HashMap::new();
    for c in &calls {
        *per_step.entry(c.step_id).or_default() += 1;
    }
    assert_eq!(per_step.len(), 8 * 7);
    assert!(per_step.values().all(|n| *n == 1), "a step ran twice");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM step_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 8 * 7);
    eprintln!(
        "two engines: A ran {} steps, B ran {}",
        ra.claimed, rb.claimed
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_expired_lease_is_claimed_again_and_the_late_result_discarded(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;

    // Worker A claims both roots, then stalls (no heartbeat) until we let it go.
    let (a_exec, release_a) = TestExecutor::new().hold(&["ensure_stack", "ensure_namespace"]);
    let mut a_config = config();
    a_config.heartbeat = Duration::from_secs(3600);
    let a = Engine::with_config(pool.clone(), a_exec.clone(), a_config);
    let a_tick = tokio::spawn(async move { a.tick().await });
    until_called(&a_exec, 2).await;

    // The lease runs out (without waiting: moved into the past); B takes over.
    time_travel(&pool).await;
    let b_exec = TestExecutor::new();
    let b = Engine::with_config(pool.clone(), b_exec.clone(), config());
    let rb = b.drain().await.unwrap();
    assert_eq!(rb.succeeded, 7);
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);

    // A wakes up: its results are refused, nothing is recorded twice.
    release_a.add_permits(10);
    let ra = a_tick.await.unwrap().unwrap();
    assert_eq!(ra.claimed, 2);
    assert_eq!(ra.lease_lost, 2);
    assert_eq!(ra.succeeded, 0);

    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(steps[0].attempts, 2);
    assert_eq!(steps[0].output.as_ref().unwrap()["attempt"], 2);
    assert_eq!(b_exec.count("ensure_stack"), 1);
    assert_eq!(a_exec.count("ensure_stack"), 1);
    let outcomes: Vec<(i32, AttemptOutcome)> = sqlx::query_as(
        "SELECT attempt, outcome FROM step_attempts WHERE step_id = $1 ORDER BY attempt",
    )
    .bind(steps[0].id.0)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![
            (1, AttemptOutcome::LeaseLost),
            (2, AttemptOutcome::Succeeded)
        ]
    );
    assert_eq!(events(&pool, &env, "step.lease_expired").await.len(), 2);
    assert_eq!(events(&pool, &env, "step.succeeded").await.len(), 7);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_lease_lost_on_the_last_attempt_fails_the_step(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let retry = StepRetries {
        max_attempts: 1,
        ..quick_retry()
    };
    let run = enqueue(&pool, &env, &company, &insight(), &retry).await;
    let crashed = Engine::with_config(pool.clone(), TestExecutor::new().hanging(), config());
    let task = tokio::spawn(async move { crashed.tick().await });
    until_running(&pool, 2).await;
    task.abort();
    let _ = task.await;
    time_travel(&pool).await;

    let b = Engine::with_config(pool.clone(), TestExecutor::new(), config());
    b.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert!(steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("lease expired on the last allowed attempt"));
    assert_eq!(
        request_status(&pool, &env).await,
        (RequestStatus::Failed, RequestStatus::Failed)
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn run_until_works_through_and_stops_on_shutdown(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let exec = TestExecutor::new();
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    until(
        "the run succeeds",
        4000,
        Duration::from_millis(5),
        || async { run_status(&pool, run).await.unwrap() == RunStatus::Succeeded },
    )
    .await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert_eq!(exec.calls().len(), 7);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn shutdown_hands_running_steps_back_without_counting_them(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let mut cfg = config();
    cfg.shutdown_grace = Duration::ZERO;
    let engine = Engine::with_config(pool.clone(), TestExecutor::new().hanging(), cfg);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(async move {
        engine
            .run_until(async {
                let _ = stopped.await;
            })
            .await
    });
    until_running(&pool, 2).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(steps[0].status, StepStatus::Pending);
    assert!(steps[0].log.contains("interrupted: the worker shut down"));

    // Another worker picks them up at once, with the full attempt budget.
    let exec = TestExecutor::new();
    Engine::with_config(pool.clone(), exec.clone(), config())
        .drain()
        .await
        .unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(exec.count("ensure_stack"), 1);
}
