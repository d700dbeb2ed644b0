//! Recording a step's success (only while the lease is still this worker's) and the dependents
//! it unblocks, what a finished run leaves behind (releases, a rollback's summary, the proof of
//! removal), and a lease handed back without an outcome. Failures are in `fail.rs`.

use berth_db::events::append;
use berth_domain::{RequestKind, RequestStatus, RunStatus, StepStatus};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    lock_run, log_line, refresh_blocked, run_steps, set_request_status, set_request_status_after,
    start_if_pending, truncate_chars, AttemptOutcome, Claimed, LockedRun, MAX_ERROR_CHARS,
};
use crate::dag::StepKind;
use crate::error::EngineError;
use crate::events as kind;

/// What a finish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Recorded; `run_done` when the run reached a final state with it.
    Recorded { run_done: bool },
    /// The lease was no longer ours: nothing recorded (another worker or an operator owns it).
    LeaseLost,
}

/// Records a success: output, log, the attempt, dependents unblocked, and the run finished
/// when every step succeeded.
pub(crate) async fn finish_success(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
    output: Option<Value>,
    log: &[String],
) -> Result<Finished, EngineError> {
    let mut tx = pool.begin().await?;
    let mut run = lock_run(&mut tx, claimed.run_id).await?;
    let mut lines = String::new();
    for l in log {
        lines.push_str(&log_line(claimed.attempt, l));
    }
    lines.push_str(&log_line(claimed.attempt, "succeeded"));
    let n = sqlx::query!(
        "UPDATE steps SET status = 'succeeded', finished_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, output = $4, error = NULL, log = right(log || $5, 8000)
         WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
        claimed.step_id,
        worker,
        claimed.attempt,
        output,
        lines
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(Finished::LeaseLost);
    }
    start_if_pending(&mut tx, claimed.run_id, &mut run).await?;
    close_attempt(&mut tx, claimed, AttemptOutcome::Succeeded, None).await?;
    append(
        &mut tx,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::STEP_SUCCEEDED,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "attempt": claimed.attempt }),
    )
    .await?;

    record_release(&mut tx, claimed, &run, output.as_ref()).await?;

    let mut run_done = false;
    if run.status == RunStatus::Running && claimed.kind == StepKind::Rollback {
        finish_rolled_back(&mut tx, claimed.run_id, &run, output.as_ref()).await?;
        run_done = true;
    } else if run.status == RunStatus::Running {
        refresh_blocked(&mut tx, claimed.run_id).await?;
        let steps = run_steps(&mut tx, claimed.run_id).await?;
        if steps.iter().all(|s| s.status == StepStatus::Succeeded) {
            sqlx::query!(
                "UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = $1",
                claimed.run_id
            )
            .execute(&mut *tx)
            .await?;
            append(
                &mut tx,
                run.environment_id,
                Some(run.request_id),
                None,
                kind::RUN_SUCCEEDED,
                json!({ "run_id": claimed.run_id }),
            )
            .await?;
            if run.request_kind == RequestKind::Decommission {
                record_decommissioned(&mut tx, claimed.run_id, &run).await?;
            } else {
                berth_db::requests::apply_spec(&mut tx, run.request_id, &run.blueprint_version)
                    .await?;
            }
            set_request_status(
                &mut tx,
                run.request_id,
                run.environment_id,
                claimed.run_id,
                RequestStatus::Ready,
                None,
            )
            .await?;
            run_done = true;
        }
    }
    tx.commit().await?;
    Ok(Finished::Recorded { run_done })
}

/// What each app runs now (`environment_releases`), written with the step that changed it: a
/// chart step's release, a rollback's releases, an uninstall's removal.
async fn record_release(
    conn: &mut PgConnection,
    claimed: &Claimed,
    run: &LockedRun,
    output: Option<&Value>,
) -> Result<(), EngineError> {
    let releases: Vec<&Value> = match (claimed.kind, output) {
        (StepKind::DeployChart, Some(o)) => vec![o],
        (StepKind::Rollback, Some(o)) => o["apps"].as_array().into_iter().flatten().collect(),
        (StepKind::UninstallChart, _) => {
            sqlx::query!(
                "DELETE FROM environment_releases WHERE environment_id = $1 AND app = $2",
                run.environment_id,
                claimed.app
            )
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        _ => return Ok(()),
    };
    for r in releases {
        let app = r["app"].as_str().or(claimed.app.as_deref());
        let (Some(app), Some(release), Some(version), Some(revision)) = (
            app,
            r["release"].as_str(),
            r["chart_version"].as_str(),
            r["revision"].as_i64(),
        ) else {
            return Err(EngineError::Corrupt(format!(
                "step {} reported a release without app, release, chart version or revision",
                claimed.name
            )));
        };
        sqlx::query!(
            "INSERT INTO environment_releases
                 (environment_id, app, release, chart_version, revision, run_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (environment_id, app) DO UPDATE
                 SET release = EXCLUDED.release, chart_version = EXCLUDED.chart_version,
                     revision = EXCLUDED.revision, run_id = EXCLUDED.run_id, updated_at = now()",
            run.environment_id,
            app,
            release,
            version,
            revision as i32,
            claimed.run_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A failed change whose rollback succeeded: the run ends `failed` saying where it failed and
/// what was rolled back to which revision; the request fails, the environment stays `ready`.
async fn finish_rolled_back(
    conn: &mut PgConnection,
    run_id: Uuid,
    run: &LockedRun,
    output: Option<&Value>,
) -> Result<(), EngineError> {
    let from = run
        .rolling_back_from
        .clone()
        .unwrap_or_else(|| "the change failed".into());
    let apps: Vec<String> = output
        .and_then(|o| o["apps"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(format!(
                "{} to revision {}",
                a["app"].as_str()?,
                a["rolled_back_to"].as_u64()?
            ))
        })
        .collect();
    let summary = if apps.is_empty() {
        "nothing needed rolling back".to_owned()
    } else {
        format!("rolled back {}", apps.join(", "))
    };
    let run_error = truncate_chars(
        &format!("change failed at {from}; {summary}"),
        MAX_ERROR_CHARS,
    );
    sqlx::query!(
        "UPDATE runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
        run_id,
        run_error
    )
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::RUN_ROLLED_BACK,
        json!({ "run_id": run_id, "failed": from, "rolled_back": output.map(|o| o["apps"].clone()) }),
    )
    .await?;
    set_request_status_after(
        conn,
        run.request_id,
        run.environment_id,
        run_id,
        RequestStatus::Failed,
        None,
        true,
    )
    .await
}

/// A decommission's last step proved the unit gone: the `decommissioned` event records each
/// check (the proof step's output), in the transaction that frees the name and slug.
async fn record_decommissioned(
    conn: &mut PgConnection,
    run_id: Uuid,
    run: &LockedRun,
) -> Result<(), EngineError> {
    let proof = sqlx::query_scalar!(
        "SELECT output FROM steps WHERE run_id = $1 AND kind = 'prove_removed'",
        run_id
    )
    .fetch_one(&mut *conn)
    .await?
    .ok_or_else(|| EngineError::Corrupt("the proof of removal recorded nothing".into()))?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::DECOMMISSIONED,
        json!({ "run_id": run_id, "checks": proof["checks"], "retained": proof["retained"] }),
    )
    .await?;
    Ok(())
}

pub(super) async fn close_attempt(
    conn: &mut PgConnection,
    claimed: &Claimed,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> Result<(), EngineError> {
    sqlx::query!(
        "UPDATE step_attempts SET outcome = $3, finished_at = now(), error = $4
         WHERE step_id = $1 AND attempt = $2",
        claimed.step_id,
        claimed.attempt,
        outcome as AttemptOutcome,
        error
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives a claimed step back without counting the attempt (worker shutting down).
pub(crate) async fn release(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
) -> Result<(), EngineError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query!(
        "UPDATE steps SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                run_after = now(), attempts_base = LEAST(attempts_base + 1, attempts),
                log = right(log || $4, 8000)
         WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
        claimed.step_id,
        worker,
        claimed.attempt,
        log_line(claimed.attempt, "interrupted: the worker shut down")
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        close_attempt(
            &mut tx,
            claimed,
            AttemptOutcome::LeaseLost,
            Some("worker shut down"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
