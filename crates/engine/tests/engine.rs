//! The engine against a real Postgres (a fresh database per test) with a scripted executor.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use berth_engine::{
    cancel_run, enqueue_run, retry_run, run_status, steps_of_run, Engine, EngineError, RetryPolicy,
    RunStatus, StepError, StepStatus,
};
use common::*;
use sqlx::PgPool;

fn statuses(steps: &[berth_engine::StepView]) -> Vec<(String, StepStatus)> {
    steps.iter().map(|s| (s.name.clone(), s.status)).collect()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn enqueue_derives_the_dag_inside_the_callers_transaction(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;

    // Rolled back with the caller's transaction: nothing stays.
    let mut tx = pool.begin().await.unwrap();
    enqueue_run(
        &mut tx,
        env.request_id,
        env.environment_id,
        &insight(),
        company.admin,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    assert!(event_kinds(&pool, &env).await.is_empty());

    let run = enqueue(&pool, &env, &company, &insight(), &RetryPolicy::default()).await;
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Pending);
    let steps = steps_of_run(&pool, run).await.unwrap();
    let view: Vec<(&str, StepStatus, Option<&str>, i32)> = steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.status,
                s.blocked_reason.as_deref(),
                s.max_attempts,
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            ("ensure_stack", StepStatus::Pending, None, 5),
            ("ensure_namespace", StepStatus::Pending, None, 5),
            (
                "read_secrets",
                StepStatus::Blocked,
                Some("waiting for the AWS stack to be ready"),
                5
            ),
            (
                "chart:foundation",
                StepStatus::Blocked,
                Some("waiting for the unit's secrets and the namespace to be ready"),
                3
            ),
            (
                "chart:certs",
                StepStatus::Blocked,
                Some("waiting for foundation to be ready"),
                3
            ),
            (
                "chart:influxdb",
                StepStatus::Blocked,
                Some("waiting for certs to be ready"),
                3
            ),
            (
                "chart:dsm",
                StepStatus::Blocked,
                Some("waiting for influxdb to be ready"),
                3
            ),
        ]
    );
    let enqueued = events(&pool, &env, "run.enqueued").await;
    assert_eq!(enqueued.len(), 1);
    assert_eq!(enqueued[0].0, Some(company.admin));
    assert_eq!(enqueued[0].1["run_id"], run.0.to_string());
    assert_eq!(enqueued[0].1["blueprint_version"], "1.0.0");
    assert_eq!(request_status(&pool, &env).await.0, "approved");

    // One live run per environment.
    let mut tx = pool.begin().await.unwrap();
    let again = enqueue_run(
        &mut tx,
        env.request_id,
        env.environment_id,
        &insight(),
        company.admin,
    )
    .await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn only_approved_requests_are_enqueued(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let other = approved_env(&pool, &company, "charging", "Charging").await;
    sqlx::query("UPDATE requests SET status = 'provisioning' WHERE id = $1")
        .bind(env.request_id)
        .execute(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let err = enqueue_run(
        &mut tx,
        env.request_id,
        env.environment_id,
        &insight(),
        company.admin,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("only an approved request"),
        "{err}"
    );
    let mut tx = pool.begin().await.unwrap();
    let err = enqueue_run(
        &mut tx,
        other.request_id,
        env.environment_id,
        &insight(),
        company.admin,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err}");
}

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
        ("ready".into(), "ready".into())
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
    let attempts: Vec<(String, String)> =
        sqlx::query_as("SELECT idempotency_key, outcome FROM step_attempts ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts.len(), 7);
    assert!(attempts.iter().all(|(_, o)| o == "succeeded"));

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
    let outcomes: Vec<(i32, String)> = sqlx::query_as(
        "SELECT attempt, outcome FROM step_attempts WHERE step_id = $1 ORDER BY attempt",
    )
    .bind(steps[0].id.0)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![(1, "lease_lost".into()), (2, "succeeded".into())]
    );
    assert_eq!(events(&pool, &env, "step.lease_expired").await.len(), 2);
    assert_eq!(events(&pool, &env, "step.succeeded").await.len(), 7);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_lease_lost_on_the_last_attempt_fails_the_step(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let retry = RetryPolicy {
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
        ("failed".into(), "failed".into())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn transient_errors_are_retried_until_success(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let exec = TestExecutor::new().script(
        "chart:certs",
        vec![
            Err(StepError::Transient("503 cluster unavailable".into())),
            Err(StepError::Transient("429 rate limited".into())),
        ],
    );
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    let report = engine.drain().await.unwrap();
    assert_eq!(report.retrying, 2);
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(exec.count("chart:certs"), 3);
    let certs = &steps_of_run(&pool, run).await.unwrap()[4];
    assert_eq!(certs.attempts, 3);
    assert!(certs.error.is_none());
    assert!(
        certs
            .log
            .contains("[attempt 1] failed (will retry in 0 ms): 503 cluster unavailable"),
        "{}",
        certs.log
    );
    assert!(certs.log.contains("[attempt 3] succeeded"));
    let retrying = events(&pool, &env, "step.retrying").await;
    assert_eq!(retrying.len(), 2);
    assert_eq!(retrying[1].1["error"], "429 rate limited");
    // Keys differ per attempt.
    let keys: Vec<String> = exec
        .calls()
        .iter()
        .filter(|c| c.name == "chart:certs")
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys[0] != keys[1] && keys[1] != keys[2]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_retry_waits_for_its_backoff(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &RetryPolicy::default()).await;
    let exec = TestExecutor::new().script(
        "ensure_stack",
        vec![Err(StepError::Transient("Throttling".into()))],
    );
    let mut cfg = config();
    cfg.retry = RetryPolicy::default(); // 1 s first backoff, ±20 %
    let engine = Engine::with_config(pool.clone(), exec.clone(), cfg);
    engine.drain().await.unwrap();
    assert_eq!(exec.count("ensure_stack"), 1, "not retried before its time");
    let waiting: bool = sqlx::query_scalar(
        "SELECT run_after > now() + interval '500 milliseconds' FROM steps
         WHERE run_id = $1 AND name = 'ensure_stack' AND status = 'pending'",
    )
    .bind(run.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(waiting);
    time_travel(&pool).await;
    engine.drain().await.unwrap();
    assert_eq!(exec.count("ensure_stack"), 2);
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn permanent_errors_and_exhausted_retries_fail_the_run(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    // Permanent: one call, no retry.
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let exec = TestExecutor::new().script(
        "ensure_stack",
        vec![Err(StepError::Permanent(
            "access denied on CreateChangeSet".into(),
        ))],
    );
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    let report = engine.drain().await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(exec.count("ensure_stack"), 1);
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(
        statuses(&steps),
        vec![
            ("ensure_stack".into(), StepStatus::Failed),
            ("ensure_namespace".into(), StepStatus::Succeeded),
            ("read_secrets".into(), StepStatus::Skipped),
            ("chart:foundation".into(), StepStatus::Skipped),
            ("chart:certs".into(), StepStatus::Skipped),
            ("chart:influxdb".into(), StepStatus::Skipped),
            ("chart:dsm".into(), StepStatus::Skipped),
        ]
    );
    assert_eq!(
        steps[2].blocked_reason.as_deref(),
        Some("not run: the AWS stack failed")
    );
    assert_eq!(
        request_status(&pool, &env).await,
        ("failed".into(), "failed".into())
    );
    let failed = events(&pool, &env, "run.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1["step"], "ensure_stack");
    let kinds = event_kinds(&pool, &env).await;
    assert_eq!(kinds.iter().filter(|k| *k == "request.failed").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "step.failed").count(), 1);

    // Transient but never better: fails after max_attempts.
    let env2 = approved_env(&pool, &company, "charging", "Charging").await;
    let retry = RetryPolicy {
        max_attempts: 2,
        ..quick_retry()
    };
    let run2 = enqueue(&pool, &env2, &company, &insight(), &retry).await;
    let flaky = TestExecutor::new().script(
        "ensure_namespace",
        vec![
            Err(StepError::Transient("cluster unreachable".into())),
            Err(StepError::Transient("cluster unreachable".into())),
            Err(StepError::Transient("cluster unreachable".into())),
        ],
    );
    let engine = Engine::with_config(pool.clone(), flaky.clone(), config());
    engine.drain().await.unwrap();
    assert_eq!(flaky.count("ensure_namespace"), 2);
    assert_eq!(run_status(&pool, run2).await.unwrap(), RunStatus::Failed);
    let ns = &steps_of_run(&pool, run2).await.unwrap()[1];
    assert_eq!(ns.status, StepStatus::Failed);
    assert_eq!(
        ns.error.as_deref(),
        Some("cluster unreachable (gave up after 2 attempts)")
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_operator_retries_a_failed_run_from_the_failed_step(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    let exec = TestExecutor::new().script(
        "chart:influxdb",
        vec![Err(StepError::Permanent(
            "Error: INSTALLATION FAILED: chart not found".into(),
        ))],
    );
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);

    // Bad operator input and wrong states are refused.
    assert!(matches!(
        retry_run(&pool, run, company.admin, "  ").await,
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        cancel_run(&pool, run, company.admin, "stop").await,
        Err(EngineError::Conflict(_))
    ));

    retry_run(&pool, run, company.admin, "chart repo fixed")
        .await
        .unwrap();
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(steps[5].status, StepStatus::Pending);
    assert_eq!(steps[6].status, StepStatus::Blocked);
    assert_eq!(
        steps[6].blocked_reason.as_deref(),
        Some("waiting for influxdb to be ready")
    );
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Pending);

    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    for (step, n) in [
        ("ensure_stack", 1),
        ("chart:certs", 1),
        ("chart:influxdb", 2),
        ("chart:dsm", 1),
    ] {
        assert_eq!(exec.count(step), n, "{step}");
    }
    assert_eq!(
        request_status(&pool, &env).await,
        ("ready".into(), "ready".into())
    );
    let retried = events(&pool, &env, "run.retried").await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].0, Some(company.admin));
    assert_eq!(retried[0].1["reason"], "chart repo fixed");
    assert_eq!(
        retried[0].1["steps"],
        serde_json::json!(["chart:influxdb", "chart:dsm"])
    );
    let kinds = event_kinds(&pool, &env).await;
    assert_eq!(kinds.iter().filter(|k| *k == "request.failed").count(), 1);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "request.provisioning")
            .count(),
        2
    );
    assert!(matches!(
        retry_run(&pool, run, company.admin, "again").await,
        Err(EngineError::Conflict(_))
    ));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_operator_cancels_a_run_in_flight_and_retries_it_later(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;

    // Both roots are in flight when the admin cancels.
    let (exec, _never) = TestExecutor::new().hold(&["ensure_stack", "ensure_namespace"]);
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    let task = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.tick().await })
    };
    until_called(&exec, 2).await;
    cancel_run(&pool, run, company.admin, "wrong size requested")
        .await
        .unwrap();
    // The worker notices at its next heartbeat and stops the step.
    let report = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the cancelled step stops")
        .unwrap()
        .unwrap();
    assert_eq!(report.lease_lost, 2, "{report:?}");

    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Cancelled);
    let steps = steps_of_run(&pool, run).await.unwrap();
    assert_eq!(steps[0].status, StepStatus::Cancelled);
    assert!(steps.iter().all(|s| s.status == StepStatus::Cancelled));
    assert_eq!(
        request_status(&pool, &env).await,
        ("failed".into(), "failed".into())
    );
    let cancelled = events(&pool, &env, "run.cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].0, Some(company.admin));
    assert_eq!(cancelled[0].1["reason"], "wrong size requested");
    assert_eq!(engine.drain().await.unwrap().claimed, 0, "nothing runs");

    retry_run(&pool, run, company.admin, "size confirmed")
        .await
        .unwrap();
    let engine = Engine::with_config(pool.clone(), TestExecutor::sharing(&exec), config());
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(exec.count("ensure_stack"), 2);
    assert_eq!(exec.count("chart:dsm"), 1);
    assert_eq!(
        request_status(&pool, &env).await,
        ("ready".into(), "ready".into())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_pending_run_can_be_cancelled_before_any_work(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    cancel_run(&pool, run, company.admin, "duplicate request")
        .await
        .unwrap();
    let exec = TestExecutor::new();
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    assert_eq!(engine.drain().await.unwrap().claimed, 0);
    assert!(exec.calls().is_empty());
    assert!(steps_of_run(&pool, run)
        .await
        .unwrap()
        .iter()
        .all(|s| s.status == StepStatus::Cancelled));
    assert_eq!(
        request_status(&pool, &env).await,
        ("failed".into(), "failed".into())
    );
    let cancelled = events(&pool, &env, "run.cancelled").await;
    assert_eq!(cancelled[0].1["reason"], "duplicate request");
    // The request passed through provisioning (the only way its state machine allows).
    let kinds = event_kinds(&pool, &env).await;
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["run.cancelled", "request.provisioning", "request.failed"]
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
    for _ in 0..4000 {
        if run_status(&pool, run).await.unwrap() == RunStatus::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
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
