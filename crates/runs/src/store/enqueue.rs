//! Enqueuing a run for an approved request: the run, its steps (the DAG) and `run.enqueued`.

use berth_blueprint::Blueprint;
use berth_db::events::append;
use berth_domain::{RequestKind, RequestStatus, StepStatus};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::dag::{self, decommission_steps, plan_steps, StepKind};
use crate::error::EngineError;
use crate::events as kind;
use crate::step_retries::StepRetries;
use crate::RunId;

/// Enqueues a run for an approved request, inside the caller's transaction (the approval's),
/// with the default step retries. See [`enqueue_run_with`].
pub async fn enqueue_run(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    blueprint: &Blueprint,
    actor: Uuid,
    plan_id: Option<Uuid>,
) -> Result<RunId, EngineError> {
    enqueue_run_with(
        conn,
        request_id,
        environment_id,
        blueprint,
        actor,
        &StepRetries::default(),
        plan_id,
    )
    .await
}

/// Enqueues a run: checks the request is `approved` and belongs to the environment, stores
/// the run and its steps (roots `pending`, the others `blocked` with their reason) and writes
/// `run.enqueued`. A second live run for the environment is a [`EngineError::Conflict`].
/// `plan_id` is the approved plan the run executes (the real executor refuses a run without
/// one; the engine's own tests run without).
#[tracing::instrument(skip_all, fields(request_id = %request_id, environment_id = %environment_id))]
pub async fn enqueue_run_with(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    blueprint: &Blueprint,
    actor: Uuid,
    retries: &StepRetries,
    plan_id: Option<Uuid>,
) -> Result<RunId, EngineError> {
    let request = sqlx::query!(
        r#"SELECT status AS "status: RequestStatus", environment_id,
                  kind AS "kind: RequestKind"
           FROM requests WHERE id = $1 FOR UPDATE"#,
        request_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound("request"))?;
    if request.environment_id != environment_id {
        return Err(EngineError::Conflict(
            "the request belongs to another environment".into(),
        ));
    }
    if request.status != RequestStatus::Approved {
        return Err(EngineError::Conflict(format!(
            "only an approved request can be provisioned (this one is {})",
            request.status
        )));
    }

    let run_id = Uuid::new_v4();
    // What each app runs now: a failed change rolls back to it.
    let releases_before = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_object_agg(app, jsonb_build_object(
                   'revision', revision, 'chart_version', chart_version)), '{}'::jsonb) AS "r!"
           FROM environment_releases WHERE environment_id = $1"#,
        environment_id
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO runs (id, environment_id, request_id, blueprint, blueprint_version, created_by,
                           plan_id, releases_before)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        run_id,
        environment_id,
        request_id,
        blueprint.name(),
        blueprint.version(),
        actor,
        plan_id,
        releases_before
    )
    .execute(&mut *conn)
    .await
    .map_err(EngineError::from_insert)?;

    // A change runs the same reconciling steps as a new unit: each does only what differs.
    let steps = match request.kind {
        RequestKind::Create | RequestKind::Change => plan_steps(blueprint, retries),
        RequestKind::Decommission => decommission_steps(blueprint, retries),
    };
    for (position, step) in steps.iter().enumerate() {
        let (status, reason) = if step.depends_on.is_empty() {
            (StepStatus::Pending, None)
        } else {
            let waiting: Vec<&str> = step.depends_on.iter().map(String::as_str).collect();
            (StepStatus::Blocked, Some(dag::blocked_reason(&waiting)))
        };
        sqlx::query!(
            "INSERT INTO steps (id, run_id, name, kind, app, position, depends_on, status,
                                max_attempts, blocked_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            Uuid::new_v4(),
            run_id,
            step.name,
            step.kind as StepKind,
            step.app,
            position as i32,
            &step.depends_on,
            status as StepStatus,
            step.max_attempts as i32,
            reason
        )
        .execute(&mut *conn)
        .await?;
    }

    append(
        conn,
        environment_id,
        Some(request_id),
        Some(actor),
        kind::RUN_ENQUEUED,
        json!({
            "run_id": run_id,
            "blueprint": blueprint.name(),
            "blueprint_version": blueprint.version(),
            "request_kind": request.kind,
            "plan_id": plan_id,
            "steps": steps.iter().map(|s| json!({"name": s.name, "depends_on": s.depends_on})).collect::<Vec<_>>(),
        }),
    )
    .await?;
    tracing::info!(run_id = %run_id, steps = steps.len(), "run enqueued");
    Ok(RunId(run_id))
}
