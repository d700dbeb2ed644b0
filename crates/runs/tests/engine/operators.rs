//! Operators: retrying a failed run, cancelling one in flight or still pending.

use std::time::Duration;

use berth_domain::RequestStatus;
use berth_runs::testing::*;
use berth_runs::{
    cancel_run, retry_run, run_status, steps_of_run, Engine, EngineError, RunStatus, StepError,
    StepStatus,
};
use sqlx::PgPool;

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
        retry_run(&pool, run, &actor(&company, true), "  ").await,
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        cancel_run(&pool, run, &actor(&company, true), "stop").await,
        Err(EngineError::Conflict(_))
    ));

    retry_run(&pool, run, &actor(&company, true), "chart repo fixed")
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
        (RequestStatus::Ready, RequestStatus::Ready)
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
        retry_run(&pool, run, &actor(&company, true), "again").await,
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
    cancel_run(&pool, run, &actor(&company, true), "wrong size requested")
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
        (RequestStatus::Failed, RequestStatus::Failed)
    );
    let cancelled = events(&pool, &env, "run.cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].0, Some(company.admin));
    assert_eq!(cancelled[0].1["reason"], "wrong size requested");
    assert_eq!(engine.drain().await.unwrap().claimed, 0, "nothing runs");

    retry_run(&pool, run, &actor(&company, true), "size confirmed")
        .await
        .unwrap();
    let engine = Engine::with_config(pool.clone(), TestExecutor::sharing(&exec), config());
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(exec.count("ensure_stack"), 2);
    assert_eq!(exec.count("chart:dsm"), 1);
    assert_eq!(
        request_status(&pool, &env).await,
        (RequestStatus::Ready, RequestStatus::Ready)
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_pending_run_can_be_cancelled_before_any_work(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = approved_env(&pool, &company, "trucking", "Trucking").await;
    let run = enqueue(&pool, &env, &company, &insight(), &quick_retry()).await;
    cancel_run(&pool, run, &actor(&company, true), "duplicate request")
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
        (RequestStatus::Failed, RequestStatus::Failed)
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
