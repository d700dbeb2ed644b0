//! An environment's life after its first run: a change (planned, approved, run; rolled back when
//! it fails), and a decommission (planned, approved, proven), with the environment's own states.

use berth_domain::{AppOverrides, ChangeForm, EnvironmentStatus, RequestStatus};
use berth_runs::testing::*;
use berth_runs::{
    lifecycle, releases_of, retry_run, run_status, steps_of_run, Engine, EngineError, RunId,
    RunStatus, StepError, StepStatus,
};
use sqlx::PgPool;

use crate::statuses;

/// A unit provisioned through the real path: submitted, planned, approved, run to ready.
async fn ready_env(pool: &PgPool, company: &Company) -> Env {
    let env = submitted_env(pool, company, "trucking", "Trucking").await;
    plan_and_approve(pool, company, &env, TestPlanner::default()).await;
    Engine::with_config(pool.clone(), TestExecutor::new(), config())
        .drain()
        .await
        .unwrap();
    assert_eq!(env_status(pool, &env).await, EnvironmentStatus::Ready);
    env
}

async fn env_status(pool: &PgPool, env: &Env) -> EnvironmentStatus {
    sqlx::query_scalar::<_, String>("SELECT status FROM environments WHERE id = $1")
        .bind(env.environment_id)
        .fetch_one(pool)
        .await
        .unwrap()
        .parse()
        .unwrap()
}

async fn request(pool: &PgPool, request_id: uuid::Uuid) -> RequestStatus {
    sqlx::query_scalar::<_, String>("SELECT status FROM requests WHERE id = $1")
        .bind(request_id)
        .fetch_one(pool)
        .await
        .unwrap()
        .parse()
        .unwrap()
}

fn change_to(size: &str) -> ChangeForm {
    ChangeForm {
        name: Some("Trucking".into()),
        slug: Some("trucking".into()),
        description: String::new(),
        owner_contact: "dana@seaview.example".into(),
        size: size.into(),
        blueprint_version: String::new(),
        overrides: AppOverrides::default(),
    }
}

/// Submits a change, plans it and approves it; the request and the run it enqueued.
async fn approved_change(
    pool: &PgPool,
    company: &Company,
    env: &Env,
    form: &ChangeForm,
) -> (Env, RunId) {
    let sub = lifecycle::submit_change(
        pool,
        &templates(),
        env.environment_id,
        &actor(company, false),
        form,
    )
    .await
    .unwrap();
    let change = Env {
        environment_id: sub.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(pool, company, &change, TestPlanner::default()).await;
    (change, run)
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_change_runs_beside_a_ready_environment_and_becomes_its_spec(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    let before = releases_of(&pool, env.environment_id).await.unwrap();
    assert_eq!(before.len(), 4, "each app's release is recorded");
    assert!(before.iter().all(|r| r.revision == 1));

    let sub = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &actor(&company, false),
        &change_to("large"),
    )
    .await
    .unwrap();
    // Awaiting its decision, the environment stays ready.
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    let change = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(&pool, &company, &change, TestPlanner::default()).await;
    let (exec, gate) = TestExecutor::new().hold(&["chart:dsm"]);
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    let worker = tokio::spawn({
        let engine = Engine::with_config(pool.clone(), exec.clone(), config());
        async move { engine.drain().await }
    });
    until_called(&exec, 6).await;
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Changing);
    gate.add_permits(1);
    worker.await.unwrap().unwrap();
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    assert_eq!(request(&pool, sub.request_id).await, RequestStatus::Ready);
    let size: String = sqlx::query_scalar("SELECT size FROM environments WHERE id = $1")
        .bind(env.environment_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        size, "large",
        "the environment's spec is the change's once it ran"
    );
    let after = releases_of(&pool, env.environment_id).await.unwrap();
    assert!(after.iter().all(|r| r.revision == 2 && r.run_id == run.0));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn bad_changes_are_refused_and_store_nothing(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    let manager = actor(&company, false);
    let refused = |r: Result<_, EngineError>| match r {
        Err(EngineError::Db(berth_db::DbError::Invalid(errors))) => errors,
        other => panic!("expected field errors, got {other:?}"),
    };

    let same = change_to("medium");
    let errors = refused(
        lifecycle::submit_change(&pool, &templates(), env.environment_id, &manager, &same).await,
    );
    assert_eq!(errors.get("form"), Some(berth_domain::NOTHING_WOULD_CHANGE));

    let mut renamed = change_to("large");
    renamed.name = Some("Trucks".into());
    let errors = refused(
        lifecycle::submit_change(&pool, &templates(), env.environment_id, &manager, &renamed).await,
    );
    assert!(errors.get("name").unwrap().contains("cannot change"));

    let mut bad = change_to("medium");
    bad.overrides.0.insert(
        "dsm".into(),
        [("replicas".to_owned(), serde_json::json!(99))].into(),
    );
    bad.overrides.0.insert(
        "influxdb".into(),
        [("colour".to_owned(), serde_json::json!("blue"))].into(),
    );
    let errors = refused(
        lifecycle::submit_change(&pool, &templates(), env.environment_id, &manager, &bad).await,
    );
    assert!(errors.get("overrides.dsm.replicas").is_some(), "{errors:?}");
    assert!(
        errors.get("overrides.influxdb.colour").is_some()
            || errors.get("overrides.influxdb").is_some(),
        "{errors:?}"
    );

    let mut version = change_to("large");
    version.blueprint_version = "9.9.9".into();
    let errors = refused(
        lifecycle::submit_change(&pool, &templates(), env.environment_id, &manager, &version).await,
    );
    assert!(errors
        .get("blueprint_version")
        .unwrap()
        .contains("not published"));

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM requests WHERE environment_id = $1")
        .bind(env.environment_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the create request");

    // One open request at a time; none while a run is live.
    let first = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &change_to("large"),
    )
    .await
    .unwrap();
    let second = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &change_to("small"),
    )
    .await;
    assert!(
        matches!(second, Err(EngineError::Db(berth_db::DbError::Conflict(_)))),
        "{second:?}"
    );
    plan_and_approve(
        &pool,
        &company,
        &Env {
            environment_id: env.environment_id,
            request_id: first.request_id,
        },
        TestPlanner::default(),
    )
    .await;
    let live = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &change_to("small"),
    )
    .await;
    match live {
        Err(EngineError::Conflict(m)) => assert!(m.contains("in progress"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // An admin is not a manager: no change requests.
    let admin = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &actor(&company, true),
        &change_to("small"),
    )
    .await;
    assert!(matches!(admin, Err(EngineError::Denied(_))), "{admin:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failed_change_rolls_back_and_the_environment_stays_ready(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    let (change, run) = approved_change(&pool, &company, &env, &change_to("large")).await;
    let exec = TestExecutor::new().script(
        "chart:dsm",
        vec![Err(StepError::Permanent(
            "UPGRADE FAILED: dsm pods crash".into(),
        ))],
    );
    Engine::with_config(pool.clone(), exec.clone(), config())
        .drain()
        .await
        .unwrap();
    assert_eq!(exec.count("rollback"), 1);
    let steps = steps_of_run(&pool, run).await.unwrap();
    let view = statuses(&steps);
    assert!(view.contains(&("chart:dsm".into(), StepStatus::Failed)));
    assert!(view.contains(&("rollback".into(), StepStatus::Succeeded)));
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);
    let error: String = sqlx::query_scalar("SELECT error FROM runs WHERE id = $1")
        .bind(run.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        error.starts_with("change failed at dsm: UPGRADE FAILED")
            && error.contains("foundation to revision 1"),
        "{error}"
    );
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    assert_eq!(
        request(&pool, change.request_id).await,
        RequestStatus::Failed
    );
    let size: String = sqlx::query_scalar("SELECT size FROM environments WHERE id = $1")
        .bind(env.environment_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(size, "medium", "the environment keeps its previous spec");
    assert_eq!(events(&pool, &change, "run.rolling_back").await.len(), 1);
    assert_eq!(events(&pool, &change, "run.rolled_back").await.len(), 1);
    // Over: a retry would re-apply half a change.
    let retry = retry_run(&pool, run, &actor(&company, true), "again").await;
    assert!(matches!(retry, Err(EngineError::Conflict(_))), "{retry:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failed_rollback_fails_the_environment_and_a_retry_resumes_it(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    let (change, run) = approved_change(&pool, &company, &env, &change_to("large")).await;
    let exec = TestExecutor::new()
        .script(
            "chart:influxdb",
            vec![Err(StepError::Permanent("UPGRADE FAILED: influxdb".into()))],
        )
        .script(
            "rollback",
            vec![Err(StepError::Permanent("ROLLBACK FAILED: certs".into()))],
        );
    let engine = Engine::with_config(pool.clone(), exec.clone(), config());
    engine.drain().await.unwrap();
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Failed);
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Failed);
    let error: String = sqlx::query_scalar("SELECT error FROM runs WHERE id = $1")
        .bind(run.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        error.contains("UPGRADE FAILED: influxdb")
            && error.contains("the rollback failed too: ROLLBACK FAILED: certs"),
        "both reasons: {error}"
    );
    retry_run(&pool, run, &actor(&company, true), "rollback again")
        .await
        .unwrap();
    engine.drain().await.unwrap();
    assert_eq!(exec.count("rollback"), 2);
    assert_eq!(
        exec.count("chart:influxdb"),
        1,
        "the failed upgrade is not repeated"
    );
    assert_eq!(env_status(&pool, &env).await, EnvironmentStatus::Ready);
    assert_eq!(
        request(&pool, change.request_id).await,
        RequestStatus::Failed
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_decommission_is_proven_and_frees_the_name(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    let manager = actor(&company, false);
    let wrong =
        lifecycle::submit_decommission(&pool, env.environment_id, &manager, "trucking").await;
    match wrong {
        Err(EngineError::Db(berth_db::DbError::Invalid(e))) => assert!(e.get("confirm").is_some()),
        other => panic!("expected a confirmation error, got {other:?}"),
    }
    let sub = lifecycle::submit_decommission(&pool, env.environment_id, &manager, "Trucking")
        .await
        .unwrap();
    let decommission = Env {
        environment_id: env.environment_id,
        request_id: sub.request_id,
    };
    let run = plan_and_approve(&pool, &company, &decommission, TestPlanner::default()).await;
    let exec = TestExecutor::new();
    Engine::with_config(pool.clone(), exec.clone(), config())
        .drain()
        .await
        .unwrap();
    let names: Vec<String> = exec.calls().iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        [
            "uninstall:dsm",
            "uninstall:influxdb",
            "uninstall:certs",
            "uninstall:foundation",
            "remove_namespace",
            "delete_stack",
            "prove_removed"
        ]
    );
    assert_eq!(run_status(&pool, run).await.unwrap(), RunStatus::Succeeded);
    assert_eq!(
        env_status(&pool, &env).await,
        EnvironmentStatus::Decommissioned
    );
    let proof = events(&pool, &decommission, "decommissioned").await;
    assert_eq!(proof.len(), 1);
    assert_eq!(proof[0].1["checks"][0]["passed"], true);
    assert!(releases_of(&pool, env.environment_id)
        .await
        .unwrap()
        .is_empty());
    // Nothing more can be asked of it, and its name can be requested again.
    let again = lifecycle::submit_change(
        &pool,
        &templates(),
        env.environment_id,
        &manager,
        &change_to("large"),
    )
    .await;
    assert!(
        matches!(again, Err(EngineError::Db(berth_db::DbError::Conflict(_)))),
        "{again:?}"
    );
    submitted_env(&pool, &company, "trucking", "Trucking").await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_database_refuses_an_illegal_environment_move(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = ready_env(&pool, &company).await;
    for illegal in ["submitted", "decommissioned", "provisioning"] {
        let r = sqlx::query("UPDATE environments SET status = $2 WHERE id = $1")
            .bind(env.environment_id)
            .bind(illegal)
            .execute(&pool)
            .await;
        assert!(r.is_err(), "ready → {illegal} must be refused");
    }
    let renamed = sqlx::query("UPDATE environments SET slug = 'trucks' WHERE id = $1")
        .bind(env.environment_id)
        .execute(&pool)
        .await;
    assert!(renamed.is_err());
}
