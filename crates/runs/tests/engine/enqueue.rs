//! Enqueuing: the DAG, inside the caller's transaction, one live run per environment, approved requests only.

use berth_domain::RequestStatus;
use berth_runs::testing::*;
use berth_runs::{
    enqueue_run, run_status, steps_of_run, EngineError, RunStatus, StepRetries, StepStatus,
};
use sqlx::PgPool;

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
        None,
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

    let run = enqueue(&pool, &env, &company, &insight(), &StepRetries::default()).await;
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
    assert_eq!(request_status(&pool, &env).await.0, RequestStatus::Approved);

    // One live run per environment.
    let mut tx = pool.begin().await.unwrap();
    let again = enqueue_run(
        &mut tx,
        env.request_id,
        env.environment_id,
        &insight(),
        company.admin,
        None,
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
        None,
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
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err}");
}
