//! The runs' SQL, one file per concern: [`enqueue`] (a run and its steps), [`reads`] (what
//! pages show), [`claim`] (leases, heartbeats, a step's context), [`finish`] (outcomes,
//! unblocking, failing a run) and [`operators`] (retry and cancel). Every state change writes
//! its event in the same transaction. Lock order: a run's row before its steps' rows (the claim
//! takes step rows only, and starts runs in a transaction of its own). Requests and
//! environments are berth-db's: their status moves only through `berth_db::requests::set_status`.

mod claim;
mod enqueue;
mod fail;
mod finish;
mod operators;
mod reads;

pub(crate) use claim::{attempt_is_live, claim, heartbeat, load_context, Claimed};
pub use enqueue::{enqueue_run, enqueue_run_with};
pub(crate) use fail::{finish_failure, reap_exhausted, Failure};
pub(crate) use finish::{finish_success, release, Finished};
pub use operators::{cancel_run, retry_run};
pub use reads::{
    latest_run, releases_of, run, run_status, steps_of_run, ReleaseRecord, RunView, StepView,
};

use std::time::Duration;

use berth_db::events::append;
use berth_domain::{RequestKind, RequestStatus, RunStatus, StepStatus};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::dag;
use crate::error::EngineError;
use crate::events as kind;

/// One log line is cut to this many characters.
const MAX_LOG_LINE_CHARS: usize = 500;
/// Stored errors are cut to this many characters (the column allows 2000).
const MAX_ERROR_CHARS: usize = 1000;

/// How an attempt ended (`step_attempts.outcome`; `running` until then). Public so tests and
/// tools read the column as this type, never as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Running,
    Succeeded,
    /// Failed, another attempt follows.
    Retrying,
    Failed,
    LeaseLost,
    /// Stopped by an operator's cancel.
    Cancelled,
}

/// `text` cut to at most `max_chars` characters (not bytes), with `…` when something was cut.
pub(crate) fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

fn log_line(attempt: i32, text: &str) -> String {
    format!(
        "[attempt {attempt}] {}\n",
        truncate_chars(text.trim(), MAX_LOG_LINE_CHARS)
    )
}

/// A duration as the float seconds SQL's `make_interval(secs => …)` takes.
fn interval_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(crate) fn idempotency_key(step_id: Uuid, attempt: i32) -> String {
    format!("{step_id}:{attempt}")
}

/// A run's row, locked by this transaction.
struct LockedRun {
    environment_id: Uuid,
    request_id: Uuid,
    status: RunStatus,
    request_kind: RequestKind,
    blueprint_version: String,
    /// While a failed change rolls back: the failure it answers.
    rolling_back_from: Option<String>,
}

async fn lock_run(conn: &mut PgConnection, run: Uuid) -> Result<LockedRun, EngineError> {
    sqlx::query_as!(
        LockedRun,
        r#"SELECT r.environment_id, r.request_id, r.status AS "status: RunStatus",
                  q.kind AS "request_kind: RequestKind", r.blueprint_version,
                  r.rolling_back_from
           FROM runs r JOIN requests q ON q.id = r.request_id
           WHERE r.id = $1 FOR UPDATE OF r"#,
        run
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound("run"))
}

struct StepRow {
    name: String,
    status: StepStatus,
    depends_on: Vec<String>,
}

async fn run_steps(conn: &mut PgConnection, run: Uuid) -> Result<Vec<StepRow>, EngineError> {
    Ok(sqlx::query_as!(
        StepRow,
        r#"SELECT name, status AS "status: StepStatus", depends_on
           FROM steps WHERE run_id = $1 ORDER BY position"#,
        run
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Starts a `pending` run (its first step was claimed): the run is `running`, the request and
/// environment `provisioning`. Called with the run locked; also on the finish paths, in case
/// the claiming worker died between its claim and this.
async fn start_if_pending(
    conn: &mut PgConnection,
    run: Uuid,
    locked: &mut LockedRun,
) -> Result<(), EngineError> {
    if locked.status != RunStatus::Pending {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, now())
         WHERE id = $1",
        run
    )
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        locked.environment_id,
        Some(locked.request_id),
        None,
        kind::RUN_STARTED,
        json!({ "run_id": run }),
    )
    .await?;
    set_request_status(
        conn,
        locked.request_id,
        locked.environment_id,
        run,
        RequestStatus::Provisioning,
        None,
    )
    .await?;
    locked.status = RunStatus::Running;
    Ok(())
}

/// Moves the request (and the environment's status with it) to `to` through berth-db, which
/// checks the domain's transition table, and records the run's event when it moved:
/// `approved`/`failed` → `provisioning` → `ready`/`failed`.
async fn set_request_status(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    run: Uuid,
    to: RequestStatus,
    actor: Option<Uuid>,
) -> Result<(), EngineError> {
    set_request_status_after(conn, request_id, environment_id, run, to, actor, false).await
}

/// [`set_request_status`]; `rolled_back`: a failed change that put everything back, so its
/// environment stays `ready` on its previous spec.
async fn set_request_status_after(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    run: Uuid,
    to: RequestStatus,
    actor: Option<Uuid>,
    rolled_back: bool,
) -> Result<(), EngineError> {
    let event = match to {
        RequestStatus::Provisioning => kind::REQUEST_PROVISIONING,
        RequestStatus::Ready => kind::REQUEST_READY,
        RequestStatus::Failed => kind::REQUEST_FAILED,
        other => return Err(EngineError::Corrupt(format!("no transition to {other}"))),
    };
    if !berth_db::requests::set_status_after(conn, request_id, to, rolled_back).await? {
        // Already there (e.g. a retried run whose request went back to provisioning earlier).
        return Ok(());
    }
    append(
        conn,
        environment_id,
        Some(request_id),
        actor,
        event,
        if rolled_back {
            json!({ "run_id": run, "rolled_back": true })
        } else {
            json!({ "run_id": run })
        },
    )
    .await?;
    Ok(())
}

/// Recomputes `blocked`/`pending` for the run's waiting steps after a success (or a retry).
async fn refresh_blocked(conn: &mut PgConnection, run: Uuid) -> Result<(), EngineError> {
    let steps = run_steps(conn, run).await?;
    let succeeded = |n: &str| {
        steps
            .iter()
            .any(|s| s.name == n && s.status == StepStatus::Succeeded)
    };
    for s in steps.iter().filter(|s| s.status == StepStatus::Blocked) {
        match dag::readiness(&s.depends_on, &succeeded) {
            None => {
                sqlx::query!(
                    "UPDATE steps SET status = 'pending', blocked_reason = NULL, run_after = now()
                     WHERE run_id = $1 AND name = $2 AND status = 'blocked'",
                    run,
                    s.name
                )
                .execute(&mut *conn)
                .await?;
            }
            Some(reason) => {
                sqlx::query!(
                    "UPDATE steps SET blocked_reason = $3
                     WHERE run_id = $1 AND name = $2 AND status = 'blocked'",
                    run,
                    s.name,
                    reason
                )
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_chars() {
        assert_eq!(truncate_chars("ééé", 2), "éé…");
        assert_eq!(truncate_chars("ok", 5), "ok");
        assert_eq!(log_line(3, "  boom \n"), "[attempt 3] boom\n");
    }
}
