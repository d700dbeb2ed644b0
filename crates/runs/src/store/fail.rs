//! Recording a step's failure (only while the lease is still this worker's): a transient
//! failure's retry, a failure that fails the run or starts a change's rollback, a plan gone
//! stale, and steps whose lease expired on their last attempt.

use berth_db::events::append;
use berth_domain::{RequestKind, RequestStatus, RunStatus};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::finish::{close_attempt, Finished};
use super::{
    idempotency_key, interval_secs, lock_run, log_line, run_steps, set_request_status_after,
    start_if_pending, truncate_chars, AttemptOutcome, Claimed, LockedRun, MAX_ERROR_CHARS,
};
use crate::dag::{self, StepKind};
use crate::error::EngineError;
use crate::events as kind;
use crate::step_retries::StepRetries;

/// Records a failure: a transient one with attempts left goes back to `pending` after the
/// retries' backoff; otherwise the step fails, the run's waiting steps are skipped and the run,
/// request and environment fail.
pub(crate) async fn finish_failure(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
    error: &str,
    failure: Failure,
    retries: &StepRetries,
) -> Result<Finished, EngineError> {
    let transient = failure == Failure::Transient;
    let mut tx = pool.begin().await?;
    let mut run = lock_run(&mut tx, claimed.run_id).await?;
    let step = sqlx::query!(
        "SELECT attempts, attempts_base, max_attempts FROM steps
         WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
         FOR UPDATE",
        claimed.step_id,
        worker,
        claimed.attempt
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(step) = step else {
        return Ok(Finished::LeaseLost);
    };
    start_if_pending(&mut tx, claimed.run_id, &mut run).await?;
    let error = truncate_chars(error.trim(), MAX_ERROR_CHARS);
    let left = step.max_attempts - (step.attempts - step.attempts_base);
    if transient && left > 0 && run.status == RunStatus::Running {
        let delay = retries.delay(claimed.attempt as u32);
        let line = log_line(
            claimed.attempt,
            &format!("failed (will retry in {} ms): {error}", delay.as_millis()),
        );
        sqlx::query!(
            "UPDATE steps SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                    run_after = now() + make_interval(secs => $2::float8), error = $3,
                    log = right(log || $4, 8000)
             WHERE id = $1",
            claimed.step_id,
            interval_secs(delay),
            error,
            line
        )
        .execute(&mut *tx)
        .await?;
        close_attempt(&mut tx, claimed, AttemptOutcome::Retrying, Some(&error)).await?;
        append(
            &mut tx,
            run.environment_id,
            Some(run.request_id),
            None,
            kind::STEP_RETRYING,
            json!({
                "run_id": claimed.run_id, "step": claimed.name, "attempt": claimed.attempt,
                "retry_in_ms": delay.as_millis() as u64, "error": error,
            }),
        )
        .await?;
        tx.commit().await?;
        return Ok(Finished::Recorded { run_done: false });
    }
    let why = if transient && left <= 0 {
        format!("{error} (gave up after {} attempts)", step.max_attempts)
    } else {
        error.clone()
    };
    let run_done = fail_step(&mut tx, claimed, &run, &why, failure).await?;
    tx.commit().await?;
    Ok(Finished::Recorded { run_done })
}

/// How a step failed, as the engine treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Transient,
    Permanent,
    /// The approved plan is out of date: stop the run and ask for a new decision.
    NeedsReapproval,
    /// Failed, and the system it acted on put back what it had started (a CloudFormation
    /// update rolled back).
    RolledBack,
}

/// Fails a step the caller holds (run locked), and its run when still live. With
/// `NeedsReapproval` the run is cancelled instead and the request goes back to awaiting a
/// decision on a fresh plan (queued here). A change run that touched apps does not fail yet: a
/// rollback step is added and the run ends when it does (`finish_rolled_back`); a failed
/// rollback fails the run with both reasons, and a retry resumes the rollback only.
async fn fail_step(
    conn: &mut PgConnection,
    claimed: &Claimed,
    run: &LockedRun,
    error: &str,
    failure: Failure,
) -> Result<bool, EngineError> {
    let line = log_line(claimed.attempt, &format!("failed: {error}"));
    sqlx::query!(
        "UPDATE steps SET status = 'failed', finished_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, error = $2, log = right(log || $3, 8000)
         WHERE id = $1",
        claimed.step_id,
        error,
        line
    )
    .execute(&mut *conn)
    .await?;
    close_attempt(conn, claimed, AttemptOutcome::Failed, Some(error)).await?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::STEP_FAILED,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "attempt": claimed.attempt, "error": error }),
    )
    .await?;
    if run.status != RunStatus::Running {
        return Ok(false);
    }
    let steps = run_steps(conn, claimed.run_id).await?;
    let graph: Vec<(String, Vec<String>)> = steps
        .iter()
        .map(|s| (s.name.clone(), s.depends_on.clone()))
        .collect();
    let downstream = dag::downstream(&graph, &claimed.name);
    let label = dag::label(&claimed.name);
    let mut skipped = Vec::new();
    for s in steps.iter().filter(|s| s.status.is_waiting()) {
        let reason = if downstream.contains(&s.name.as_str()) {
            format!("not run: {label} failed")
        } else {
            format!("not run: the run stopped when {label} failed")
        };
        sqlx::query!(
            "UPDATE steps SET status = 'skipped', blocked_reason = $3, finished_at = now()
             WHERE run_id = $1 AND name = $2",
            claimed.run_id,
            s.name,
            reason
        )
        .execute(&mut *conn)
        .await?;
        skipped.push(s.name.clone());
    }
    if failure == Failure::NeedsReapproval {
        return stop_for_reapproval(conn, claimed, run, error, &skipped).await;
    }
    let failed_at = truncate_chars(&format!("{label}: {error}"), MAX_ERROR_CHARS);
    if claimed.kind != StepKind::Rollback
        && run.request_kind == RequestKind::Change
        && failure != Failure::RolledBack
        && touched_apps(conn, claimed).await?
    {
        start_rollback(conn, claimed, run, &failed_at, &skipped).await?;
        return Ok(false);
    }
    let run_error = match (&run.rolling_back_from, claimed.kind) {
        (Some(from), StepKind::Rollback) => truncate_chars(
            &format!("change failed at {from}; the rollback failed too: {error}"),
            MAX_ERROR_CHARS,
        ),
        _ => truncate_chars(
            &format!("{} failed: {error}", claimed.name),
            MAX_ERROR_CHARS,
        ),
    };
    sqlx::query!(
        "UPDATE runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
        claimed.run_id,
        run_error
    )
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::RUN_FAILED,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "error": error, "skipped": skipped }),
    )
    .await?;
    // A change that failed before touching anything (its stack update rolled back by
    // CloudFormation) leaves the environment as it was.
    let rolled_back = run.request_kind == RequestKind::Change && failure == Failure::RolledBack;
    set_request_status_after(
        conn,
        run.request_id,
        run.environment_id,
        claimed.run_id,
        RequestStatus::Failed,
        None,
        rolled_back,
    )
    .await?;
    Ok(true)
}

/// Whether a failed change run may have changed an app: a chart step of the run installed or
/// upgraded one, or the failed step is itself a chart step (a failed upgrade leaves a failed
/// revision).
async fn touched_apps(conn: &mut PgConnection, claimed: &Claimed) -> Result<bool, EngineError> {
    if claimed.kind == StepKind::DeployChart {
        return Ok(true);
    }
    let touched = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $1 AND kind = 'deploy_chart'
               AND status = 'succeeded' AND output->>'action' <> 'unchanged') AS "touched!""#,
        claimed.run_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(touched)
}

/// Adds the rollback step to a failed change run (which stays running) and records why.
async fn start_rollback(
    conn: &mut PgConnection,
    claimed: &Claimed,
    run: &LockedRun,
    failed_at: &str,
    skipped: &[String],
) -> Result<(), EngineError> {
    let step = dag::rollback_step(&StepRetries::default());
    let position = sqlx::query_scalar!(
        r#"SELECT COALESCE(max(position), 0) + 1 AS "next!" FROM steps WHERE run_id = $1"#,
        claimed.run_id
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO steps (id, run_id, name, kind, app, position, depends_on, status,
                            max_attempts)
         VALUES ($1, $2, $3, $4, NULL, $5, '{}', 'pending', $6)",
        Uuid::new_v4(),
        claimed.run_id,
        step.name,
        step.kind as StepKind,
        position,
        step.max_attempts as i32
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE runs SET rolling_back_from = $2 WHERE id = $1",
        claimed.run_id,
        failed_at
    )
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::RUN_ROLLING_BACK,
        json!({ "run_id": claimed.run_id, "failed": failed_at, "skipped": skipped }),
    )
    .await?;
    tracing::warn!(run_id = %claimed.run_id, step = %claimed.name, "change failed; rolling back");
    Ok(())
}

/// The rest of [`fail_step`] for a plan gone out of date: the run is cancelled, the request
/// (and its environment) awaits a decision again, a fresh plan is queued, and the timeline says
/// what changed.
async fn stop_for_reapproval(
    conn: &mut PgConnection,
    claimed: &Claimed,
    run: &LockedRun,
    changed: &str,
    skipped: &[String],
) -> Result<bool, EngineError> {
    let run_error = truncate_chars(&format!("needs re-approval: {changed}"), MAX_ERROR_CHARS);
    sqlx::query!(
        "UPDATE runs SET status = 'cancelled', finished_at = now(), error = $2 WHERE id = $1",
        claimed.run_id,
        run_error
    )
    .execute(&mut *conn)
    .await?;
    if !berth_db::requests::set_status(conn, run.request_id, RequestStatus::Submitted).await? {
        return Err(EngineError::Corrupt(
            "the request of a live run could not await a decision again".into(),
        ));
    }
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::RUN_NEEDS_REAPPROVAL,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "changed": changed, "skipped": skipped }),
    )
    .await?;
    crate::plans::enqueue_plan(
        conn,
        run.request_id,
        run.environment_id,
        crate::plans::PlanReason::Stale,
        None,
    )
    .await?;
    tracing::warn!(run_id = %claimed.run_id, "approved plan out of date; the request awaits a new decision");
    Ok(true)
}

/// Fails steps whose lease expired on their last allowed attempt (the worker died or stalled
/// each time): they are not claimable, so without this their runs would hang.
pub(crate) async fn reap_exhausted(pool: &PgPool) -> Result<Vec<Uuid>, EngineError> {
    let mut finished = Vec::new();
    loop {
        let mut tx = pool.begin().await?;
        let row = sqlx::query!(
            r#"SELECT s.id, s.run_id, s.name, s.kind AS "kind: StepKind", s.app, s.attempts
               FROM steps s JOIN runs r ON r.id = s.run_id
               WHERE r.status IN ('pending', 'running') AND s.status = 'running'
                 AND s.lease_expires_at < now()
                 AND s.attempts - s.attempts_base >= s.max_attempts
               LIMIT 1 FOR UPDATE OF s SKIP LOCKED"#
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(finished);
        };
        // Release the step lock before taking the run's (lock order: run, then steps).
        tx.rollback().await?;
        let mut tx = pool.begin().await?;
        let mut run = lock_run(&mut tx, row.run_id).await?;
        let still = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM steps WHERE id = $1 AND status = 'running'
                   AND attempts = $2 AND lease_expires_at < now()) AS "still!""#,
            row.id,
            row.attempts
        )
        .fetch_one(&mut *tx)
        .await?;
        if still {
            start_if_pending(&mut tx, row.run_id, &mut run).await?;
            let claimed = Claimed {
                step_id: row.id,
                run_id: row.run_id,
                name: row.name,
                kind: row.kind,
                app: row.app,
                attempt: row.attempts,
                idempotency_key: idempotency_key(row.id, row.attempts),
                took_over: false,
            };
            let error = "the worker's lease expired on the last allowed attempt";
            if fail_step(&mut tx, &claimed, &run, error, Failure::Permanent).await? {
                finished.push(row.run_id);
            }
        }
        tx.commit().await?;
    }
}
