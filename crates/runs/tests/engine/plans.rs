//! Plans: queued at submission, computed by the plan worker, bound to the approval by hash,
//! capacity checked, and a run stopped for re-approval when its plan went out of date.

use berth_domain::{ApprovalTerms, Decision, PlanStatus, RequestStatus};
use berth_runs::plans::{current_plan, plan_for_run, plan_hash, request_plan};
use berth_runs::testing::*;
use berth_runs::{
    decide_request, latest_run, ApprovalContext, Engine, EngineError, PlanError, RunStatus,
    StepError,
};
use sqlx::PgPool;

fn approve() -> Decision {
    Decision::parse("approve", "looks right").unwrap()
}

fn terms(hash: &str) -> ApprovalTerms {
    ApprovalTerms::parse(hash, false, "").unwrap()
}

async fn decide(
    pool: &PgPool,
    company: &Company,
    env: &Env,
    terms: Option<&ApprovalTerms>,
) -> Result<berth_runs::DecisionOutcome, EngineError> {
    decide_request(
        pool,
        &templates(),
        env.request_id,
        &actor(company, true),
        approve(),
        terms,
        ApprovalContext::default(),
    )
    .await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn submission_queues_a_plan_the_worker_computes(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    let queued = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(queued.status, PlanStatus::Computing);
    assert!(event_kinds(&pool, &env)
        .await
        .contains(&"plan.requested".to_owned()));

    let planner = TestPlanner::default();
    assert_eq!(
        plan_worker(&pool, planner.clone()).drain().await.unwrap(),
        1
    );
    let plan = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(plan.status, PlanStatus::Ready);
    let doc = plan.document.unwrap();
    // The stored hash is the document's content hash, and the capacity line saw no one else.
    assert_eq!(plan.hash.as_deref(), Some(plan_hash(&doc).as_str()));
    assert_eq!(doc.capacity.committed, Default::default());
    // A computed plan is immutable.
    let err = sqlx::query("UPDATE plans SET error = 'x' WHERE id = $1")
        .bind(plan.id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    let ready = events(&pool, &env, "plan.ready").await;
    assert_eq!(ready[0].1["hash"], plan.hash.unwrap().as_str());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn approval_binds_the_plan_the_admin_saw(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    let planner = TestPlanner::default();
    let worker = plan_worker(&pool, planner.clone());

    // Not while computing, and never without naming a plan.
    let some = "a".repeat(64);
    let err = decide(&pool, &company, &env, Some(&terms(&some)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still being computed"), "{err}");
    let err = decide(&pool, &company, &env, None).await.unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");

    worker.drain().await.unwrap();
    let seen = ready_hash(&pool, &env).await;
    // The plan changes between page load and approval (a template edited): refused.
    planner.bump();
    request_plan(&pool, env.request_id, &actor(&company, true))
        .await
        .unwrap();
    worker.drain().await.unwrap();
    let current = ready_hash(&pool, &env).await;
    assert_ne!(seen, current);
    let err = decide(&pool, &company, &env, Some(&terms(&seen)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan changed since you opened this page; review the new plan"
    );
    assert_eq!(
        request_status(&pool, &env).await.0,
        RequestStatus::Submitted
    );
    assert!(latest_run(&pool, env.environment_id)
        .await
        .unwrap()
        .is_none());

    // The plan on screen now: approved, and the run carries it.
    let outcome = decide(&pool, &company, &env, Some(&terms(&current)))
        .await
        .unwrap();
    assert_eq!(outcome.status, RequestStatus::Approved);
    let run = outcome.run.unwrap();
    let executed = plan_for_run(&pool, run.0).await.unwrap().unwrap();
    assert_eq!(executed.hash.as_deref(), Some(current.as_str()));
    let approved = events(&pool, &env, "request.approved").await;
    assert_eq!(approved[0].1["plan_hash"], current.as_str());
    assert_eq!(approved[0].1["capacity_override"], serde_json::Value::Null);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn over_capacity_needs_an_override_with_a_reason(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    // Already live: a large environment (16 CPU). The cluster has 20 CPU; medium needs 8.
    approved_env(&pool, &company, "big", "Big").await;
    sqlx::query("UPDATE environments SET size = 'large'")
        .execute(&pool)
        .await
        .unwrap();
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    plan_worker(&pool, TestPlanner::with_allocatable(20, 256))
        .drain()
        .await
        .unwrap();
    let hash = ready_hash(&pool, &env).await;
    let err = decide(&pool, &company, &env, Some(&terms(&hash)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("exceeds the cluster's capacity"),
        "{err}"
    );
    assert!(err.to_string().contains("24 of 20 CPU"), "{err}");

    let overridden = ApprovalTerms::parse(&hash, true, "burst capacity arrives Monday").unwrap();
    let outcome = decide(&pool, &company, &env, Some(&overridden))
        .await
        .unwrap();
    assert_eq!(outcome.status, RequestStatus::Approved);
    let approved = events(&pool, &env, "request.approved").await;
    assert_eq!(approved[0].1["over_capacity"], true);
    assert_eq!(
        approved[0].1["capacity_override"],
        "burst capacity arrives Monday"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failed_plan_blocks_approval_until_a_refresh_plans_cleanly(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    let planner = TestPlanner::default();
    let worker = plan_worker(&pool, planner.clone());
    planner.fail_with(Some(PlanError::Invalid(
        "chart dsm 9.9.9 (app dsm) is not in repository stable".into(),
    )));
    worker.drain().await.unwrap();
    let plan = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(plan.error.unwrap().contains("dsm 9.9.9"));
    let err = decide(&pool, &company, &env, Some(&terms(&"b".repeat(64))))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dsm 9.9.9"), "{err}");

    // Transient failures are retried, then given up with the count.
    planner.fail_with(Some(PlanError::Transient("Rancher: 503".into())));
    request_plan(&pool, env.request_id, &actor(&company, true))
        .await
        .unwrap();
    worker.drain().await.unwrap();
    let plan = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(plan.error.unwrap().contains("gave up after 2 attempts"));

    // Refreshing is an admin's, and only while the request awaits a decision.
    let err = request_plan(&pool, env.request_id, &actor(&company, false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("admin"), "{err}");
    planner.fail_with(None);
    request_plan(&pool, env.request_id, &actor(&company, true))
        .await
        .unwrap();
    worker.drain().await.unwrap();
    let hash = ready_hash(&pool, &env).await;
    decide(&pool, &company, &env, Some(&terms(&hash)))
        .await
        .unwrap();
    let err = request_plan(&pool, env.request_id, &actor(&company, true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("awaiting a decision"), "{err}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn other_templates_on_this_server_refuse_the_approval_and_replan(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    let planner = TestPlanner::default();
    plan_worker(&pool, planner.clone()).drain().await.unwrap();
    let hash = ready_hash(&pool, &env).await;
    let digests = [("insight@1.0.0".to_owned(), "setup-rev1".to_owned())].into();
    let err = decide_request(
        &pool,
        &templates(),
        env.request_id,
        &actor(&company, true),
        approve(),
        Some(&terms(&hash)),
        ApprovalContext {
            setup_digests: Some(&digests),
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("the plan changed"), "{err}");
    let replan = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(replan.status, PlanStatus::Computing);
    assert_eq!(replan.reason, berth_runs::plans::PlanReason::Stale);
    assert_eq!(
        request_status(&pool, &env).await.0,
        RequestStatus::Submitted
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_out_of_date_plan_stops_the_run_and_asks_again(pool: PgPool) {
    let company = seed_company(&pool, "seaview", "SeaView").await;
    let env = submitted_env(&pool, &company, "trucking", "Trucking").await;
    let worker = plan_worker(&pool, TestPlanner::default());
    worker.drain().await.unwrap();
    let hash = ready_hash(&pool, &env).await;
    decide(&pool, &company, &env, Some(&terms(&hash)))
        .await
        .unwrap();

    let exec = TestExecutor::new().script(
        "ensure_stack",
        vec![Err(StepError::NeedsReapproval(
            "changed since plan abc was approved: the chart or rendered values of dsm".into(),
        ))],
    );
    let engine = Engine::with_config(pool.clone(), exec, config());
    engine.drain().await.unwrap();
    let run = latest_run(&pool, env.environment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.error.unwrap().starts_with("needs re-approval"));
    // Nothing after the stop ran (ensure_namespace, a root beside ensure_stack, may have).
    assert_eq!(engine.executor().count("read_secrets"), 0);
    assert_eq!(engine.executor().count("chart:foundation"), 0);
    // The request (and the environment) await a decision again, the decision cleared, and a
    // fresh plan is queued; the timeline says what changed.
    assert_eq!(
        request_status(&pool, &env).await,
        (RequestStatus::Submitted, RequestStatus::Submitted)
    );
    let decided: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT decided_by FROM requests WHERE id = $1")
            .bind(env.request_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(decided.is_none());
    let stopped = events(&pool, &env, "run.needs_reapproval").await;
    assert!(stopped[0].1["changed"]
        .as_str()
        .unwrap()
        .contains("rendered values of dsm"));
    let replan = current_plan(&pool, env.request_id).await.unwrap().unwrap();
    assert_eq!(replan.reason, berth_runs::plans::PlanReason::Stale);
    // Approving the fresh plan starts a new run.
    worker.drain().await.unwrap();
    let hash = ready_hash(&pool, &env).await;
    let again = decide(&pool, &company, &env, Some(&terms(&hash)))
        .await
        .unwrap();
    assert!(again.run.is_some());
}
