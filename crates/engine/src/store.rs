//! The engine's SQL: enqueue, claim, heartbeat, finish, operators' controls. Every state change
//! writes its event in the same transaction. Lock order: a run's row before its steps' rows
//! (the claim takes step rows only, and starts runs in a transaction of its own).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use berth_blueprint::Blueprint;
use berth_db::events::append;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dag::{self, plan_steps, StepKind};
use crate::error::EngineError;
use crate::events as kind;
use crate::executor::{StepContext, UnitInfo};
use crate::retry::RetryPolicy;
use crate::{RunId, StepId};

/// The longest operator reason kept (as for request decisions).
const MAX_REASON_CHARS: usize = 1000;
/// One log line is cut to this many characters.
const MAX_LOG_LINE_CHARS: usize = 500;
/// Stored errors are cut to this many characters (the column allows 2000).
const MAX_ERROR_CHARS: usize = 1000;

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            other => return Err(format!("unknown run status {other:?}")),
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Ready to be claimed (possibly after a backoff: `run_after`).
    Pending,
    /// Claimed by a worker holding a lease.
    Running,
    Succeeded,
    /// Failed for good (permanent error or attempts exhausted).
    Failed,
    /// Waiting for the steps it depends on (`blocked_reason` says which).
    Blocked,
    /// Not run because the run failed.
    Skipped,
    /// Stopped by an operator.
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Blocked => "blocked",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for StepStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => StepStatus::Pending,
            "running" => StepStatus::Running,
            "succeeded" => StepStatus::Succeeded,
            "failed" => StepStatus::Failed,
            "blocked" => StepStatus::Blocked,
            "skipped" => StepStatus::Skipped,
            "cancelled" => StepStatus::Cancelled,
            other => return Err(format!("unknown step status {other:?}")),
        })
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step as stored, for pages and tests.
#[derive(Debug, Clone)]
pub struct StepView {
    pub id: StepId,
    pub name: String,
    pub kind: StepKind,
    pub app: Option<String>,
    pub position: i32,
    pub depends_on: Vec<String>,
    pub status: StepStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub blocked_reason: Option<String>,
    pub log: String,
    pub error: Option<String>,
    pub output: Option<Value>,
}

fn corrupt(e: String) -> EngineError {
    EngineError::Corrupt(e)
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

fn log_line(attempt: i32, text: &str) -> String {
    format!(
        "[attempt {attempt}] {}\n",
        cut(text.trim(), MAX_LOG_LINE_CHARS)
    )
}

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

/// Enqueues a run for an approved request, inside the caller's transaction (the approval's),
/// with the default retry policy. See [`enqueue_run_with`].
pub async fn enqueue_run(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    blueprint: &Blueprint,
    actor: Uuid,
) -> Result<RunId, EngineError> {
    enqueue_run_with(
        conn,
        request_id,
        environment_id,
        blueprint,
        actor,
        &RetryPolicy::default(),
    )
    .await
}

/// Enqueues a run: checks the request is `approved` and belongs to the environment, stores
/// the run and its steps (roots `pending`, the others `blocked` with their reason) and writes
/// `run.enqueued`. A second live run for the environment is a [`EngineError::Conflict`].
#[tracing::instrument(skip_all, fields(request_id = %request_id, environment_id = %environment_id))]
pub async fn enqueue_run_with(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    blueprint: &Blueprint,
    actor: Uuid,
    retry: &RetryPolicy,
) -> Result<RunId, EngineError> {
    let request = sqlx::query!(
        "SELECT status, environment_id FROM requests WHERE id = $1 FOR UPDATE",
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
    if request.status != "approved" {
        return Err(EngineError::Conflict(format!(
            "only an approved request can be provisioned (this one is {})",
            request.status
        )));
    }

    let run_id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO runs (id, environment_id, request_id, blueprint, blueprint_version, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        run_id,
        environment_id,
        request_id,
        blueprint.name(),
        blueprint.version(),
        actor
    )
    .execute(&mut *conn)
    .await
    .map_err(EngineError::from_insert)?;

    let steps = plan_steps(blueprint, retry);
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
            step.kind.as_str(),
            step.app,
            position as i32,
            &step.depends_on,
            status.as_str(),
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
            "steps": steps.iter().map(|s| json!({"name": s.name, "depends_on": s.depends_on})).collect::<Vec<_>>(),
        }),
    )
    .await?;
    tracing::info!(run_id = %run_id, steps = steps.len(), "run enqueued");
    Ok(RunId(run_id))
}

/// The status of a run.
pub async fn run_status(pool: &PgPool, run: RunId) -> Result<RunStatus, EngineError> {
    let status = sqlx::query_scalar!("SELECT status FROM runs WHERE id = $1", run.0)
        .fetch_optional(pool)
        .await?
        .ok_or(EngineError::NotFound("run"))?;
    status.parse().map_err(corrupt)
}

/// A run as stored, for pages.
#[derive(Debug, Clone)]
pub struct RunView {
    pub id: RunId,
    pub environment_id: Uuid,
    pub request_id: Uuid,
    pub status: RunStatus,
    pub blueprint: String,
    pub blueprint_version: String,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub error: Option<String>,
}

/// The environment's newest run, if any.
pub async fn latest_run(
    pool: &PgPool,
    environment_id: Uuid,
) -> Result<Option<RunView>, EngineError> {
    let row = sqlx::query!(
        "SELECT id, environment_id, request_id, status, blueprint, blueprint_version,
                created_at, started_at, finished_at, error
         FROM runs WHERE environment_id = $1 ORDER BY created_at DESC, id LIMIT 1",
        environment_id
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(RunView {
            id: RunId(r.id),
            environment_id: r.environment_id,
            request_id: r.request_id,
            status: r.status.parse().map_err(corrupt)?,
            blueprint: r.blueprint,
            blueprint_version: r.blueprint_version,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            error: r.error,
        })
    })
    .transpose()
}

/// The steps of a run in display order.
pub async fn steps_of_run(pool: &PgPool, run: RunId) -> Result<Vec<StepView>, EngineError> {
    let rows = sqlx::query!(
        "SELECT id, name, kind, app, position, depends_on, status, attempts, max_attempts,
                run_after, started_at, finished_at, blocked_reason, log, error, output
         FROM steps WHERE run_id = $1 ORDER BY position",
        run.0
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(StepView {
                id: StepId(r.id),
                name: r.name,
                kind: r.kind.parse().map_err(corrupt)?,
                app: r.app,
                position: r.position,
                depends_on: r.depends_on,
                status: r.status.parse().map_err(corrupt)?,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
                run_after: r.run_after,
                started_at: r.started_at,
                finished_at: r.finished_at,
                blocked_reason: r.blocked_reason,
                log: r.log,
                error: r.error,
                output: r.output,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Worker side

/// A step this worker holds a lease on.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub step_id: Uuid,
    pub run_id: Uuid,
    pub name: String,
    pub kind: StepKind,
    pub app: Option<String>,
    pub attempt: i32,
    pub idempotency_key: String,
    /// The previous lease had expired (a worker crashed or stalled).
    pub took_over: bool,
}

pub(crate) fn idempotency_key(step_id: Uuid, attempt: i32) -> String {
    format!("{step_id}:{attempt}")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Claims up to `limit` ready steps (due `pending` steps, and `running` steps whose lease
/// expired with attempts left) with `FOR UPDATE SKIP LOCKED`, and records one attempt each
/// with its idempotency key. Then, in a second transaction, starts their runs and writes the
/// `step.started` events.
pub(crate) async fn claim(
    pool: &PgPool,
    worker: Uuid,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>, EngineError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        r#"WITH ready AS (
               SELECT s.id, s.status AS old_status
               FROM steps s JOIN runs r ON r.id = s.run_id
               WHERE r.status IN ('pending', 'running')
                 AND ((s.status = 'pending' AND s.run_after <= now())
                   OR (s.status = 'running' AND s.lease_expires_at < now()
                       AND s.attempts - s.attempts_base < s.max_attempts))
               ORDER BY s.run_after, s.position
               LIMIT $1
               FOR UPDATE OF s SKIP LOCKED)
           UPDATE steps s
           SET status = 'running', attempts = s.attempts + 1, lease_owner = $2,
               lease_expires_at = now() + make_interval(secs => $3::float8),
               started_at = COALESCE(s.started_at, now()), blocked_reason = NULL
           FROM ready WHERE s.id = ready.id
           RETURNING s.id, s.run_id, s.name, s.kind, s.app, s.attempts,
                     ready.old_status AS "old_status!""#,
        limit,
        worker,
        secs(lease)
    )
    .fetch_all(&mut *tx)
    .await?;

    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        let took_over = r.old_status == "running";
        if took_over {
            sqlx::query!(
                "UPDATE step_attempts SET outcome = 'lease_lost', finished_at = now()
                 WHERE step_id = $1 AND outcome = 'running'",
                r.id
            )
            .execute(&mut *tx)
            .await?;
        }
        let key = idempotency_key(r.id, r.attempts);
        sqlx::query!(
            "INSERT INTO step_attempts (step_id, attempt, idempotency_key, worker_id)
             VALUES ($1, $2, $3, $4)",
            r.id,
            r.attempts,
            key,
            worker
        )
        .execute(&mut *tx)
        .await?;
        claimed.push(Claimed {
            step_id: r.id,
            run_id: r.run_id,
            name: r.name,
            kind: r.kind.parse().map_err(corrupt)?,
            app: r.app,
            attempt: r.attempts,
            idempotency_key: key,
            took_over,
        });
    }
    tx.commit().await?;
    if !claimed.is_empty() {
        // The claims are committed: losing them to a hiccup here would stall the steps until
        // their leases expire, so retry, and if it still fails go on (the finish paths start
        // the run; only the start events would be missing, which the log says).
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=3 {
            match record_claims(pool, &claimed).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, "cannot record claims; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record claims; step.started events missing")
                }
            }
        }
    }
    Ok(claimed)
}

/// Starts the claimed steps' runs that are still `pending` (request and environment move to
/// `provisioning`) and writes the steps' start events.
async fn record_claims(pool: &PgPool, claimed: &[Claimed]) -> Result<(), EngineError> {
    let mut runs: Vec<Uuid> = claimed.iter().map(|c| c.run_id).collect();
    runs.sort();
    runs.dedup();
    let mut tx = pool.begin().await?;
    let mut envs = BTreeMap::new();
    for run in runs {
        let r = sqlx::query!(
            "SELECT environment_id, request_id, status FROM runs WHERE id = $1 FOR UPDATE",
            run
        )
        .fetch_one(&mut *tx)
        .await?;
        envs.insert(run, (r.environment_id, r.request_id));
        let mut locked = LockedRun {
            environment_id: r.environment_id,
            request_id: r.request_id,
            status: r.status,
        };
        start_if_pending(&mut tx, run, &mut locked).await?;
    }
    for c in claimed {
        let (env, request) = envs[&c.run_id];
        if c.took_over {
            append(
                &mut tx,
                env,
                Some(request),
                None,
                kind::STEP_LEASE_EXPIRED,
                json!({ "run_id": c.run_id, "step": c.name, "attempt": c.attempt - 1 }),
            )
            .await?;
        }
        append(
            &mut tx,
            env,
            Some(request),
            None,
            kind::STEP_STARTED,
            json!({ "run_id": c.run_id, "step": c.name, "attempt": c.attempt }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Starts a `pending` run (its first step was claimed): the run is `running`, the request and
/// environment `provisioning`. Called with the run locked; also on the finish paths, in case
/// the claiming worker died between its claim and this.
async fn start_if_pending(
    conn: &mut PgConnection,
    run: Uuid,
    locked: &mut LockedRun,
) -> Result<(), EngineError> {
    if locked.status != "pending" {
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
        "provisioning",
        None,
    )
    .await?;
    locked.status = "running".into();
    Ok(())
}

/// Moves the request (and the environment's status with it) to `to`, with its event.
/// `approved`/`failed` → `provisioning` → `ready`/`failed`, as the requests trigger allows.
async fn set_request_status(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    run: Uuid,
    to: &str,
    actor: Option<Uuid>,
) -> Result<(), EngineError> {
    let from: &[&str] = match to {
        "provisioning" => &["approved", "failed"],
        "ready" | "failed" => &["provisioning"],
        _ => return Err(EngineError::Corrupt(format!("no transition to {to}"))),
    };
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    let updated = sqlx::query!(
        "UPDATE requests SET status = $2 WHERE id = $1 AND status = ANY($3)",
        request_id,
        to,
        &from
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        // Already there (e.g. a retried run whose request went back to provisioning earlier).
        return Ok(());
    }
    sqlx::query!(
        "UPDATE environments SET status = $2, updated_at = now() WHERE id = $1",
        environment_id,
        to
    )
    .execute(&mut *conn)
    .await?;
    let event = match to {
        "provisioning" => kind::REQUEST_PROVISIONING,
        "ready" => kind::REQUEST_READY,
        _ => kind::REQUEST_FAILED,
    };
    append(
        conn,
        environment_id,
        Some(request_id),
        actor,
        event,
        json!({ "run_id": run }),
    )
    .await?;
    Ok(())
}

/// Whether this worker's attempt is still the live one: checked before calling out.
pub(crate) async fn attempt_is_live(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
) -> Result<bool, EngineError> {
    let live = sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM step_attempts a JOIN steps s ON s.id = a.step_id
               WHERE a.idempotency_key = $1 AND a.outcome = 'running' AND a.worker_id = $2
                 AND s.status = 'running' AND s.lease_owner = $2 AND s.attempts = a.attempt
                 AND s.lease_expires_at > now()) AS "live!""#,
        claimed.idempotency_key,
        worker
    )
    .fetch_one(pool)
    .await?;
    Ok(live)
}

/// Renews the lease; `false` when it is no longer ours (taken over, or the run was cancelled).
pub(crate) async fn heartbeat(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
    lease: Duration,
) -> Result<bool, EngineError> {
    let n = sqlx::query!(
        "UPDATE steps SET lease_expires_at = now() + make_interval(secs => $4::float8)
         WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
        claimed.step_id,
        worker,
        claimed.attempt,
        secs(lease)
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Reads what the executor needs: the unit, the blueprint and earlier outputs.
pub(crate) async fn load_context(
    pool: &PgPool,
    claimed: &Claimed,
) -> Result<StepContext, EngineError> {
    let r = sqlx::query!(
        "SELECT r.blueprint, r.blueprint_version, r.environment_id, r.created_at,
                e.slug AS unit_slug, e.name AS unit_name, e.size,
                c.slug AS company_slug, c.name AS company_name
         FROM runs r JOIN environments e ON e.id = r.environment_id
                     JOIN companies c ON c.id = e.company_id
         WHERE r.id = $1",
        claimed.run_id
    )
    .fetch_one(pool)
    .await?;
    let outputs = sqlx::query!(
        r#"SELECT name, output AS "output!" FROM steps
           WHERE run_id = $1 AND status = 'succeeded' AND output IS NOT NULL"#,
        claimed.run_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|o| (o.name, o.output))
    .collect();
    let previous_output = sqlx::query_scalar!(
        r#"SELECT s.output AS "output!" FROM steps s JOIN runs r ON r.id = s.run_id
           WHERE r.environment_id = $1 AND r.id <> $2 AND r.status = 'succeeded'
             AND r.created_at < $3 AND s.name = $4 AND s.output IS NOT NULL
           ORDER BY r.created_at DESC LIMIT 1"#,
        r.environment_id,
        claimed.run_id,
        r.created_at,
        claimed.name
    )
    .fetch_optional(pool)
    .await?;
    Ok(StepContext {
        run_id: RunId(claimed.run_id),
        step_id: StepId(claimed.step_id),
        name: claimed.name.clone(),
        kind: claimed.kind,
        app: claimed.app.clone(),
        attempt: claimed.attempt as u32,
        idempotency_key: claimed.idempotency_key.clone(),
        blueprint: r.blueprint,
        blueprint_version: r.blueprint_version,
        unit: UnitInfo {
            environment_id: r.environment_id,
            company_slug: r.company_slug,
            company_name: r.company_name,
            unit_slug: r.unit_slug,
            unit_name: r.unit_name,
            size: r.size,
        },
        outputs,
        previous_output,
    })
}

/// What a finish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Recorded; `run_done` when the run reached a final state with it.
    Recorded { run_done: bool },
    /// The lease was no longer ours: nothing recorded (another worker or an operator owns it).
    LeaseLost,
}

struct LockedRun {
    environment_id: Uuid,
    request_id: Uuid,
    status: String,
}

async fn lock_run(conn: &mut PgConnection, run: Uuid) -> Result<LockedRun, EngineError> {
    let r = sqlx::query!(
        "SELECT environment_id, request_id, status FROM runs WHERE id = $1 FOR UPDATE",
        run
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound("run"))?;
    Ok(LockedRun {
        environment_id: r.environment_id,
        request_id: r.request_id,
        status: r.status,
    })
}

struct StepRow {
    name: String,
    status: String,
    depends_on: Vec<String>,
}

async fn run_steps(conn: &mut PgConnection, run: Uuid) -> Result<Vec<StepRow>, EngineError> {
    Ok(sqlx::query!(
        "SELECT name, status, depends_on FROM steps WHERE run_id = $1 ORDER BY position",
        run
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| StepRow {
        name: r.name,
        status: r.status,
        depends_on: r.depends_on,
    })
    .collect())
}

/// Recomputes `blocked`/`pending` for the run's waiting steps after a success (or a retry).
async fn refresh_blocked(conn: &mut PgConnection, run: Uuid) -> Result<(), EngineError> {
    let steps = run_steps(conn, run).await?;
    let succeeded = |n: &str| steps.iter().any(|s| s.name == n && s.status == "succeeded");
    for s in steps.iter().filter(|s| s.status == "blocked") {
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
    sqlx::query!(
        "UPDATE step_attempts SET outcome = 'succeeded', finished_at = now()
         WHERE step_id = $1 AND attempt = $2",
        claimed.step_id,
        claimed.attempt
    )
    .execute(&mut *tx)
    .await?;
    append(
        &mut tx,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::STEP_SUCCEEDED,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "attempt": claimed.attempt }),
    )
    .await?;

    let mut run_done = false;
    if run.status == "running" {
        refresh_blocked(&mut tx, claimed.run_id).await?;
        let steps = run_steps(&mut tx, claimed.run_id).await?;
        if steps.iter().all(|s| s.status == "succeeded") {
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
            set_request_status(
                &mut tx,
                run.request_id,
                run.environment_id,
                claimed.run_id,
                "ready",
                None,
            )
            .await?;
            run_done = true;
        }
    }
    tx.commit().await?;
    Ok(Finished::Recorded { run_done })
}

/// Records a failure: a transient one with attempts left goes back to `pending` after the
/// policy's backoff; otherwise the step fails, the run's waiting steps are skipped and the run,
/// request and environment fail.
pub(crate) async fn finish_failure(
    pool: &PgPool,
    claimed: &Claimed,
    worker: Uuid,
    error: &str,
    transient: bool,
    retry: &RetryPolicy,
) -> Result<Finished, EngineError> {
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
    let error = cut(error.trim(), MAX_ERROR_CHARS);
    let left = step.max_attempts - (step.attempts - step.attempts_base);
    if transient && left > 0 && run.status == "running" {
        let delay = retry.delay(claimed.attempt as u32);
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
            secs(delay),
            error,
            line
        )
        .execute(&mut *tx)
        .await?;
        close_attempt(&mut tx, claimed, "retrying", Some(&error)).await?;
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
    let run_done = fail_step(&mut tx, claimed, &run, &why).await?;
    tx.commit().await?;
    Ok(Finished::Recorded { run_done })
}

async fn close_attempt(
    conn: &mut PgConnection,
    claimed: &Claimed,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), EngineError> {
    sqlx::query!(
        "UPDATE step_attempts SET outcome = $3, finished_at = now(), error = $4
         WHERE step_id = $1 AND attempt = $2",
        claimed.step_id,
        claimed.attempt,
        outcome,
        error
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Fails a step the caller holds (run locked), and its run when still live.
async fn fail_step(
    conn: &mut PgConnection,
    claimed: &Claimed,
    run: &LockedRun,
    error: &str,
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
    close_attempt(conn, claimed, "failed", Some(error)).await?;
    append(
        conn,
        run.environment_id,
        Some(run.request_id),
        None,
        kind::STEP_FAILED,
        json!({ "run_id": claimed.run_id, "step": claimed.name, "attempt": claimed.attempt, "error": error }),
    )
    .await?;
    if run.status != "running" {
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
    for s in steps
        .iter()
        .filter(|s| s.status == "pending" || s.status == "blocked")
    {
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
    let run_error = cut(
        &format!("{} failed: {error}", claimed.name),
        MAX_ERROR_CHARS,
    );
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
    set_request_status(
        conn,
        run.request_id,
        run.environment_id,
        claimed.run_id,
        "failed",
        None,
    )
    .await?;
    Ok(true)
}

/// Fails steps whose lease expired on their last allowed attempt (the worker died or stalled
/// each time): they are not claimable, so without this their runs would hang.
pub(crate) async fn reap_exhausted(pool: &PgPool) -> Result<Vec<Uuid>, EngineError> {
    let mut finished = Vec::new();
    loop {
        let mut tx = pool.begin().await?;
        let row = sqlx::query!(
            "SELECT s.id, s.run_id, s.name, s.kind, s.app, s.attempts, s.lease_owner
             FROM steps s JOIN runs r ON r.id = s.run_id
             WHERE r.status IN ('pending', 'running') AND s.status = 'running'
               AND s.lease_expires_at < now() AND s.attempts - s.attempts_base >= s.max_attempts
             LIMIT 1 FOR UPDATE OF s SKIP LOCKED"
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
                kind: row.kind.parse().map_err(corrupt)?,
                app: row.app,
                attempt: row.attempts,
                idempotency_key: idempotency_key(row.id, row.attempts),
                took_over: false,
            };
            let error = "the worker's lease expired on the last allowed attempt";
            if fail_step(&mut tx, &claimed, &run, error).await? {
                finished.push(row.run_id);
            }
        }
        tx.commit().await?;
    }
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
        close_attempt(&mut tx, claimed, "lease_lost", Some("worker shut down")).await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Operators

/// Retries a failed or cancelled run from where it stopped: succeeded steps stay done; failed,
/// skipped and cancelled steps get a fresh attempt budget and wait for their dependencies
/// again. The run goes back to `pending`; the request and environment move to `provisioning`
/// when a worker picks it up. Recorded as `run.retried` with who and why.
#[tracing::instrument(skip_all, fields(run_id = %run, actor = %actor))]
pub async fn retry_run(
    pool: &PgPool,
    run: RunId,
    actor: Uuid,
    reason: &str,
) -> Result<(), EngineError> {
    let reason = parse_reason(reason)?;
    let mut tx = pool.begin().await?;
    let locked = lock_run(&mut tx, run.0).await?;
    if locked.status != "failed" && locked.status != "cancelled" {
        return Err(EngineError::Conflict(format!(
            "only a failed or cancelled run can be retried (this one is {})",
            locked.status
        )));
    }
    let request_status = sqlx::query_scalar!(
        "SELECT status FROM requests WHERE id = $1 FOR UPDATE",
        locked.request_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if request_status != "failed" {
        return Err(EngineError::Conflict(format!(
            "the run's request is {request_status}; only a failed request is provisioned again"
        )));
    }
    let reset = sqlx::query_scalar!(
        "UPDATE steps SET status = 'blocked', attempts_base = attempts, finished_at = NULL,
                blocked_reason = 'waiting to be scheduled', error = NULL,
                lease_owner = NULL, lease_expires_at = NULL
         WHERE run_id = $1 AND status IN ('failed', 'skipped', 'cancelled')
         RETURNING name",
        run.0
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
        Some(actor),
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
#[tracing::instrument(skip_all, fields(run_id = %run, actor = %actor))]
pub async fn cancel_run(
    pool: &PgPool,
    run: RunId,
    actor: Uuid,
    reason: &str,
) -> Result<(), EngineError> {
    let reason = parse_reason(reason)?;
    let mut tx = pool.begin().await?;
    let locked = lock_run(&mut tx, run.0).await?;
    if locked.status != "pending" && locked.status != "running" {
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
    let run_error = cut(&format!("cancelled: {reason}"), MAX_ERROR_CHARS);
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
        Some(actor),
        kind::RUN_CANCELLED,
        json!({ "run_id": run.0, "reason": reason, "steps": cancelled }),
    )
    .await?;
    // A run not yet picked up still has an `approved` request: it passes through
    // `provisioning` (the only way the request state machine allows) to `failed`.
    set_request_status(
        &mut tx,
        locked.request_id,
        locked.environment_id,
        run.0,
        "provisioning",
        Some(actor),
    )
    .await?;
    set_request_status(
        &mut tx,
        locked.request_id,
        locked.environment_id,
        run.0,
        "failed",
        Some(actor),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(steps = cancelled.len(), "run cancelled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_chars() {
        assert_eq!(cut("ééé", 2), "éé…");
        assert_eq!(cut("ok", 5), "ok");
        assert_eq!(log_line(3, "  boom \n"), "[attempt 3] boom\n");
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(parse_reason("  ").is_err());
        assert!(parse_reason(&"x".repeat(1001)).is_err());
        assert_eq!(parse_reason(" ops asked ").unwrap(), "ops asked");
    }
}
