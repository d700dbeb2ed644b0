//! Operators' controls: retrying a failed or cancelled run, cancelling a live one. Both need a
//! reason and record who did it.

use berth_db::events::append;
use berth_domain::{Actor, RequestStatus, StepStatus};
use serde_json::json;
use sqlx::PgPool;

use super::{lock_run, refresh_blocked, set_request_status, truncate_chars, MAX_ERROR_CHARS};
use crate::error::EngineError;
use crate::events as kind;
use crate::RunId;

/// The longest operator reason kept (as for request decisions).
const MAX_REASON_CHARS: usize = 1000;

fn parse_reason(reason: &str) -> Result<String, EngineError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EngineError::Invalid("a reason is required".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(EngineError::Invalid(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_owned())
}

/// Retries a failed or cancelled run from where it stopped: succeeded steps stay done; failed,
/// skipped and cancelled steps get a fresh attempt budget and wait for their dependencies
/// again. The run goes back to `pending`; the request and environment move to `provisioning`
/// when a worker picks it up. Recorded as `run.retried` with who and why.
#[tracing::instrument(skip_all, fields(run_id = %run, actor = %actor.user_id))]
pub async fn retry_run(
    pool: &PgPool,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<(), EngineError> {
    let reason = parse_reason(reason)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let locked = lock_run(&mut tx, run.0).await?;
    if !locked.status.is_retryable() {
        return Err(EngineError::Conflict(format!(
            "only a failed or cancelled run can be retried (this one is {})",
            locked.status
        )));
    }
    let request_status = sqlx::query_scalar!(
        r#"SELECT status AS "status: RequestStatus" FROM requests WHERE id = $1 FOR UPDATE"#,
        locked.request_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if request_status != RequestStatus::Failed {
        return Err(EngineError::Conflict(format!(
            "the run's request is {request_status}; only a failed request is provisioned again"
        )));
    }
    // A failed change whose rollback finished is over: the environment runs its previous spec
    // and the change is asked for again. One whose rollback failed resumes the rollback only.
    let rollback = sqlx::query_scalar!(
        r#"SELECT status AS "status: StepStatus" FROM steps WHERE run_id = $1 AND kind = 'rollback'"#,
        run.0
    )
    .fetch_optional(&mut *tx)
    .await?;
    if rollback == Some(StepStatus::Succeeded) {
        return Err(EngineError::Conflict(
            "this change failed and was rolled back; ask for the change again instead".into(),
        ));
    }
    let reset = sqlx::query_scalar!(
        "UPDATE steps SET status = 'blocked', attempts_base = attempts, finished_at = NULL,
                blocked_reason = 'waiting to be scheduled', error = NULL,
                lease_owner = NULL, lease_expires_at = NULL
         WHERE run_id = $1 AND status IN ('failed', 'skipped', 'cancelled')
           AND ($2 = false OR kind = 'rollback')
         RETURNING name",
        run.0,
        rollback.is_some()
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE runs SET status = 'pending', finished_at = NULL, error = NULL WHERE id = $1",
        run.0
    )
    .execute(&mut *tx)
    .await
    .map_err(EngineError::from_insert)?;
    refresh_blocked(&mut tx, run.0).await?;
    append(
        &mut tx,
        locked.environment_id,
        Some(locked.request_id),
        Some(actor.user_id),
        kind::RUN_RETRIED,
        json!({ "run_id": run.0, "reason": reason, "steps": reset }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(steps = reset.len(), "run retried");
    Ok(())
}

/// Cancels a pending or running run: its unfinished steps become `cancelled` (a worker running
/// one loses its lease at the next heartbeat and stops), the run is `cancelled`, the request
/// and environment `failed`. Recorded as `run.cancelled` with who and why.
#[tracing::instrument(skip_all, fields(run_id = %run, actor = %actor.user_id))]
pub async fn cancel_run(
    pool: &PgPool,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<(), EngineError> {
    let reason = parse_reason(reason)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let locked = lock_run(&mut tx, run.0).await?;
    if !locked.status.is_live() {
        return Err(EngineError::Conflict(format!(
            "only a pending or running run can be cancelled (this one is {})",
            locked.status
        )));
    }
    let cancelled = sqlx::query_scalar!(
        "UPDATE steps SET status = 'cancelled', finished_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, blocked_reason = NULL
         WHERE run_id = $1 AND status IN ('pending', 'blocked', 'running')
         RETURNING name",
        run.0
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE step_attempts SET outcome = 'cancelled', finished_at = now()
         WHERE outcome = 'running' AND step_id IN (SELECT id FROM steps WHERE run_id = $1)",
        run.0
    )
    .execute(&mut *tx)
    .await?;
    let run_error = truncate_chars(&format!("cancelled: {reason}"), MAX_ERROR_CHARS);
    sqlx::query!(
        "UPDATE runs SET status = 'cancelled', finished_at = now(), error = $2 WHERE id = $1",
        run.0,
        run_error
    )
    .execute(&mut *tx)
    .await?;
    append(
        &mut tx,
        locked.environment_id,
        Some(locked.request_id),
        Some(actor.user_id),
        kind::RUN_CANCELLED,
        json!({ "run_id": run.0, "reason": reason, "steps": cancelled }),
    )
    .await?;
    // A run not yet picked up still has an `approved` request: it passes through
    // `provisioning` (the only way the request state machine allows) to `failed`.
    for to in [RequestStatus::Provisioning, RequestStatus::Failed] {
        set_request_status(
            &mut tx,
            locked.request_id,
            locked.environment_id,
            run.0,
            to,
            Some(actor.user_id),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(steps = cancelled.len(), "run cancelled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(parse_reason("  ").is_err());
        assert!(parse_reason(&"x".repeat(1001)).is_err());
        assert_eq!(parse_reason(" ops asked ").unwrap(), "ops asked");
    }
}
