//! The worker's side before a step runs: claiming ready steps under a lease, starting their
//! runs, checking an attempt is still live, renewing the lease, and reading a step's context.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_backoff::Backoff;
use berth_db::events::append;
use berth_domain::{RequestKind, RequestSpec, StepStatus};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{idempotency_key, interval_secs, start_if_pending};
use crate::dag::StepKind;
use crate::error::EngineError;
use crate::events as kind;
use crate::executor::{ApprovedPlan, StepContext, UnitInfo};
use crate::{RunId, StepId};

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
           RETURNING s.id, s.run_id, s.name, s.kind AS "kind: StepKind", s.app, s.attempts,
                     ready.old_status AS "old_status!: StepStatus""#,
        limit,
        worker,
        interval_secs(lease)
    )
    .fetch_all(&mut *tx)
    .await?;

    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        let took_over = r.old_status == StepStatus::Running;
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
            kind: r.kind,
            app: r.app,
            attempt: r.attempts,
            idempotency_key: key,
            took_over,
        });
    }
    tx.commit().await?;
    if !claimed.is_empty() {
        // The claims are committed: losing them to a hiccup here would stall the steps until
        // their leases expire, so retry (50 ms, then 200 ms), and if it still fails go on (the
        // finish paths start the run; only the start events would be missing, which the log
        // says).
        let backoff = Backoff {
            factor: 4,
            ..Backoff::doubling(Duration::from_millis(50), Duration::from_secs(1))
        };
        for attempt in 1..=3 {
            match record_claims(pool, &claimed).await {
                Ok(()) => break,
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, "cannot record claims; retrying");
                    tokio::time::sleep(backoff.delay(attempt)).await;
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
        let mut locked = super::lock_run(&mut tx, run).await?;
        envs.insert(run, (locked.environment_id, locked.request_id));
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
        interval_secs(lease)
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
        r#"SELECT r.blueprint, r.blueprint_version, r.environment_id, r.created_at,
                  r.releases_before, q.kind AS "request_kind: RequestKind", q.spec,
                  e.slug AS unit_slug, e.name AS unit_name,
                  environment_incarnation(e.id) AS incarnation,
                  c.slug AS company_slug, c.name AS company_name
           FROM runs r JOIN environments e ON e.id = r.environment_id
                       JOIN companies c ON c.id = e.company_id
                       JOIN requests q ON q.id = r.request_id
           WHERE r.id = $1"#,
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
    let approved = sqlx::query!(
        r#"SELECT p.id, p.hash AS "hash!", p.document AS "document!" FROM runs r
           JOIN plans p ON p.id = r.plan_id
           WHERE r.id = $1 AND p.status = 'ready'"#,
        claimed.run_id
    )
    .fetch_optional(pool)
    .await?
    .map(|p| {
        serde_json::from_value(p.document)
            .map(|doc| ApprovedPlan {
                plan_id: p.id,
                hash: p.hash,
                document: std::sync::Arc::new(doc),
            })
            .map_err(|e| EngineError::Corrupt(format!("plan {}: {e}", p.id)))
    })
    .transpose()?;
    // The request's spec, not the environment's: a change runs with its new size and overrides.
    let spec: RequestSpec = serde_json::from_value(r.spec).map_err(|e| {
        EngineError::Corrupt(format!("request spec of run {}: {e}", claimed.run_id))
    })?;
    let releases_before = serde_json::from_value(r.releases_before)
        .map_err(|e| EngineError::Corrupt(format!("releases of run {}: {e}", claimed.run_id)))?;
    Ok(StepContext {
        approved,
        request_kind: r.request_kind,
        releases_before,
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
            incarnation: r.incarnation,
            size: spec.size.as_str().to_owned(),
            overrides: spec.overrides,
        },
        outputs,
        previous_output,
    })
}
