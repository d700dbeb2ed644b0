//! Step failures: transient retries, their backoff, permanent errors and exhausted attempts.

use berth_domain::RequestStatus;
use berth_runs::testing::*;
use berth_runs::{run_status, steps_of_run, Engine, RunStatus, StepError, StepRetries, StepStatus};
use sqlx::PgPool;

use crate::statuses;

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
    let run = enqueue(&pool, &env, &company, &insight(), &StepRetries::default()).await;
    let exec = TestExecutor::new().script(
        "ensure_stack",
        vec![Err(StepError::Transient("Throttling".into()))],
    );
    let mut cfg = config();
    cfg.retry = StepRetries::default(); // 1 s first backoff, ±20 %
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
        (RequestStatus::Failed, RequestStatus::Failed)
    );
    let failed = events(&pool, &env, "run.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1["step"], "ensure_stack");
    let kinds = event_kinds(&pool, &env).await;
    assert_eq!(kinds.iter().filter(|k| *k == "request.failed").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "step.failed").count(), 1);

    // Transient but never better: fails after max_attempts.
    let env2 = approved_env(&pool, &company, "charging", "Charging").await;
    let retry = StepRetries {
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
