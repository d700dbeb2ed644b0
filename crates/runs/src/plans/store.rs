//! The `plans` table: queueing, claiming under a lease, recording the result, and reads.

use std::time::Duration;

use berth_db::events::append;
use berth_db::requests::Submission;
use berth_domain::{
    policy::{authorize, Action},
    Actor, PlanDocument, PlanStatus, Quota, RequestKind, RequestSpec, RequestStatus, Size,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{plan_hash, PlanContext, PlanError};
use crate::error::EngineError;
use crate::events as kind;
use crate::executor::{ReleaseBefore, UnitInfo};

/// Why a plan was computed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum PlanReason {
    /// The request was submitted.
    Submitted,
    /// An admin asked for a fresh plan.
    Refresh,
    /// A worker found the approved plan out of date before acting on it.
    Stale,
}

/// A stored plan.
#[derive(Debug, Clone)]
pub struct PlanRecord {
    pub id: Uuid,
    pub request_id: Uuid,
    pub environment_id: Uuid,
    pub reason: PlanReason,
    pub requested_by_name: Option<String>,
    pub status: PlanStatus,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub hash: Option<String>,
    pub document: Option<PlanDocument>,
    pub error: Option<String>,
}

/// Stores a request for a new business unit and queues its first plan, in one transaction.
pub async fn submit_request(
    pool: &PgPool,
    company_id: Uuid,
    actor: &Actor,
    spec: &RequestSpec,
) -> Result<Submission, EngineError> {
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let sub = berth_db::requests::submit_in(&mut tx, company_id, actor, spec).await?;
    enqueue_plan(
        &mut tx,
        sub.request_id,
        sub.environment_id,
        PlanReason::Submitted,
        Some(actor.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}

/// An admin asks for the request's plan to be computed again (it must await a decision).
pub async fn request_plan(
    pool: &PgPool,
    request_id: Uuid,
    actor: &Actor,
) -> Result<Uuid, EngineError> {
    authorize(Some(actor), Action::RefreshPlan)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let r = sqlx::query!(
        r#"SELECT environment_id, status AS "status: RequestStatus" FROM requests
           WHERE id = $1 FOR UPDATE"#,
        request_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(EngineError::NotFound("request"))?;
    if r.status != RequestStatus::Submitted {
        return Err(EngineError::Conflict(format!(
            "only a request awaiting a decision is planned again (this one is {})",
            r.status
        )));
    }
    let id = enqueue_plan(
        &mut tx,
        request_id,
        r.environment_id,
        PlanReason::Refresh,
        Some(actor.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Queues a plan for a worker and records `plan.requested`.
pub(crate) async fn enqueue_plan(
    conn: &mut PgConnection,
    request_id: Uuid,
    environment_id: Uuid,
    reason: PlanReason,
    actor: Option<Uuid>,
) -> Result<Uuid, EngineError> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO plans (id, request_id, environment_id, reason, requested_by)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        request_id,
        environment_id,
        reason as PlanReason,
        actor
    )
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        environment_id,
        Some(request_id),
        actor,
        kind::PLAN_REQUESTED,
        json!({ "plan_id": id, "reason": reason }),
    )
    .await?;
    Ok(id)
}

/// Rows of `plans` with the requester's name, by plan id, newest plan of a request, or a run's.
async fn select_plan(
    pool: &PgPool,
    id: Option<Uuid>,
    request_id: Option<Uuid>,
    run_id: Option<Uuid>,
) -> Result<Option<PlanRecord>, EngineError> {
    let row = sqlx::query!(
        r#"SELECT p.id, p.request_id, p.environment_id, p.reason AS "reason: PlanReason",
                  u.display_name AS "requested_by_name?", p.status AS "status: PlanStatus",
                  p.created_at, p.finished_at, p.hash, p.document, p.error
           FROM plans p LEFT JOIN users u ON u.id = p.requested_by
           WHERE ($1::uuid IS NULL OR p.id = $1)
             AND ($2::uuid IS NULL OR p.request_id = $2)
             AND ($3::uuid IS NULL OR p.id = (SELECT plan_id FROM runs WHERE id = $3))
           ORDER BY p.created_at DESC, p.id
           LIMIT 1"#,
        id,
        request_id,
        run_id
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let document = r
            .document
            .map(serde_json::from_value::<PlanDocument>)
            .transpose()
            .map_err(|e| EngineError::Corrupt(format!("plan {}: {e}", r.id)))?;
        Ok(PlanRecord {
            id: r.id,
            request_id: r.request_id,
            environment_id: r.environment_id,
            reason: r.reason,
            requested_by_name: r.requested_by_name,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
            hash: r.hash,
            document,
            error: r.error,
        })
    })
    .transpose()
}

/// The request's current (newest) plan.
pub async fn current_plan(
    pool: &PgPool,
    request_id: Uuid,
) -> Result<Option<PlanRecord>, EngineError> {
    select_plan(pool, None, Some(request_id), None).await
}

pub async fn plan_by_id(pool: &PgPool, id: Uuid) -> Result<Option<PlanRecord>, EngineError> {
    select_plan(pool, Some(id), None, None).await
}

/// The plan a run executes (none for runs from before plans existed).
pub async fn plan_for_run(pool: &PgPool, run_id: Uuid) -> Result<Option<PlanRecord>, EngineError> {
    select_plan(pool, None, None, Some(run_id)).await
}

/// The quotas of every environment that holds or will hold cluster room (approved, being
/// provisioned, ready, changing, being removed, or failed with its namespace kept), except
/// `except`.
pub async fn committed_quota(conn: &mut PgConnection, except: Uuid) -> Result<Quota, EngineError> {
    let rows = sqlx::query!(
        r#"SELECT size AS "size: Size", count(*) AS "n!" FROM environments
           WHERE id <> $1 AND status IN ('approved', 'provisioning', 'ready', 'failed',
                                         'changing', 'decommissioning')
           GROUP BY size"#,
        except
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().fold(Quota::default(), |acc, r| {
        let q = r.size.quota();
        let n = r.n as u64;
        acc.plus(Quota {
            cpu_millis: q.cpu_millis * n,
            memory_mib: q.memory_mib * n,
            pods: q.pods * n as u32,
        })
    }))
}

/// A plan this worker holds a lease on.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedPlan {
    pub id: Uuid,
    pub request_id: Uuid,
    pub environment_id: Uuid,
    pub attempts: i32,
}

/// Claims up to `limit` due plans (queued, or leased by a worker that stopped renewing).
pub(crate) async fn claim_plans(
    pool: &PgPool,
    worker: Uuid,
    lease: Duration,
    limit: i64,
) -> Result<Vec<ClaimedPlan>, EngineError> {
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT id FROM plans
               WHERE status = 'computing' AND run_after <= now()
                 AND (lease_expires_at IS NULL OR lease_expires_at < now())
               ORDER BY run_after
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
           UPDATE plans p
           SET lease_owner = $2, attempts = p.attempts + 1,
               lease_expires_at = now() + make_interval(secs => $3::float8)
           FROM due WHERE p.id = due.id
           RETURNING p.id, p.request_id, p.environment_id, p.attempts"#,
        limit,
        worker,
        lease.as_secs_f64()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedPlan {
            id: r.id,
            request_id: r.request_id,
            environment_id: r.environment_id,
            attempts: r.attempts,
        })
        .collect())
}

/// Why a claimed plan is not worth computing, if so.
pub(crate) async fn obsolete(
    pool: &PgPool,
    claimed: &ClaimedPlan,
) -> Result<Option<String>, EngineError> {
    let r = sqlx::query!(
        r#"SELECT r.status AS "status: RequestStatus",
                  EXISTS (SELECT 1 FROM plans n WHERE n.request_id = r.id
                          AND n.created_at > p.created_at) AS "newer!"
           FROM plans p JOIN requests r ON r.id = p.request_id WHERE p.id = $1"#,
        claimed.id
    )
    .fetch_one(pool)
    .await?;
    Ok(if r.newer {
        Some("superseded by a newer plan of the same request".into())
    } else if r.status != RequestStatus::Submitted {
        Some(format!(
            "the request is {} and no longer awaits a decision",
            r.status
        ))
    } else {
        None
    })
}

/// What the planner needs: the request, its unit, the committed quotas, the known stack.
pub(crate) async fn load_plan_context(
    pool: &PgPool,
    claimed: &ClaimedPlan,
) -> Result<PlanContext, EngineError> {
    let r = sqlx::query!(
        r#"SELECT r.spec, r.kind AS "kind: RequestKind", e.blueprint, e.slug AS unit_slug,
                  e.name AS unit_name, environment_incarnation(e.id) AS incarnation,
                  c.slug AS company_slug, c.name AS company_name
           FROM requests r JOIN environments e ON e.id = r.environment_id
                           JOIN companies c ON c.id = e.company_id
           WHERE r.id = $1"#,
        claimed.request_id
    )
    .fetch_one(pool)
    .await?;
    let spec: RequestSpec = serde_json::from_value(r.spec)
        .map_err(|e| EngineError::Corrupt(format!("request spec: {e}")))?;
    let known_stack_id = sqlx::query_scalar!(
        r#"SELECT s.output->>'stack_id' AS "stack_id!" FROM steps s JOIN runs r ON r.id = s.run_id
           WHERE r.environment_id = $1 AND s.name = 'ensure_stack' AND s.status = 'succeeded'
             AND s.output ? 'stack_id'
           ORDER BY r.created_at DESC LIMIT 1"#,
        claimed.environment_id
    )
    .fetch_optional(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let committed = committed_quota(&mut conn, claimed.environment_id).await?;
    let current = match r.kind {
        RequestKind::Create => None,
        _ => berth_db::requests::get_environment(pool, claimed.environment_id)
            .await?
            .map(|e| e.current_spec())
            .transpose()?,
    };
    let releases = sqlx::query!(
        "SELECT app, revision, chart_version FROM environment_releases
         WHERE environment_id = $1",
        claimed.environment_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.app,
            ReleaseBefore {
                revision: r.revision as u64,
                chart_version: r.chart_version,
            },
        )
    })
    .collect();
    Ok(PlanContext {
        plan_id: claimed.id,
        request_id: claimed.request_id,
        kind: r.kind,
        current,
        releases,
        unit: UnitInfo {
            environment_id: claimed.environment_id,
            company_slug: r.company_slug,
            company_name: r.company_name,
            unit_slug: r.unit_slug,
            unit_name: r.unit_name,
            incarnation: r.incarnation,
            size: spec.size.as_str().to_owned(),
            overrides: spec.overrides.clone(),
        },
        spec,
        blueprint: r.blueprint,
        committed,
        known_stack_id,
    })
}

/// How a claimed plan ended.
pub(crate) enum PlanOutcome {
    Ready(Box<PlanDocument>),
    Failed(String),
    /// Try again after this delay (a transient failure with attempts left).
    Retry(Duration, String),
}

/// Records the outcome if this worker still holds the lease; `false` when it lost it.
pub(crate) async fn finish_plan(
    pool: &PgPool,
    claimed: &ClaimedPlan,
    worker: Uuid,
    outcome: PlanOutcome,
) -> Result<bool, EngineError> {
    let mut tx = pool.begin().await?;
    let held = sqlx::query_scalar!(
        "SELECT lease_owner = $2 AS held FROM plans WHERE id = $1 AND status = 'computing'
         FOR UPDATE",
        claimed.id,
        worker
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten()
    .unwrap_or(false);
    if !held {
        return Ok(false);
    }
    match outcome {
        PlanOutcome::Ready(doc) => {
            let hash = plan_hash(&doc);
            let document = serde_json::to_value(&*doc)
                .map_err(|e| EngineError::Corrupt(format!("plan document: {e}")))?;
            sqlx::query!(
                "UPDATE plans SET status = 'ready', hash = $2, document = $3, finished_at = now(),
                        lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1",
                claimed.id,
                hash,
                document
            )
            .execute(&mut *tx)
            .await?;
            append(
                &mut tx,
                claimed.environment_id,
                Some(claimed.request_id),
                None,
                kind::PLAN_READY,
                json!({
                    "plan_id": claimed.id,
                    "hash": hash,
                    "aws": format!("{} ({} resource changes)", doc.aws.kind, doc.aws.changes.len()),
                    "charts": doc.charts.iter().map(|c| format!("{} {}", c.chart, c.version)).collect::<Vec<_>>(),
                    "over_capacity": !doc.capacity.fits(),
                }),
            )
            .await?;
            tracing::info!(plan_id = %claimed.id, %hash, "plan ready");
        }
        PlanOutcome::Failed(error) => {
            let error = crate::store::truncate_chars(&error, 4000);
            sqlx::query!(
                "UPDATE plans SET status = 'failed', error = $2, finished_at = now(),
                        lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1",
                claimed.id,
                error
            )
            .execute(&mut *tx)
            .await?;
            append(
                &mut tx,
                claimed.environment_id,
                Some(claimed.request_id),
                None,
                kind::PLAN_FAILED,
                json!({ "plan_id": claimed.id, "error": error }),
            )
            .await?;
            tracing::warn!(plan_id = %claimed.id, "plan failed");
        }
        PlanOutcome::Retry(after, error) => {
            sqlx::query!(
                "UPDATE plans SET lease_owner = NULL, lease_expires_at = NULL,
                        run_after = now() + make_interval(secs => $2::float8)
                 WHERE id = $1",
                claimed.id,
                after.as_secs_f64()
            )
            .execute(&mut *tx)
            .await?;
            tracing::info!(plan_id = %claimed.id, error = %error, "plan failed transiently; retrying");
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Maps a planner's result to how the plan ends, given the attempts so far.
pub(crate) fn outcome_of(
    result: Result<PlanDocument, PlanError>,
    attempts: i32,
    max_attempts: i32,
    retry_after: Duration,
) -> PlanOutcome {
    match result {
        Ok(doc) => PlanOutcome::Ready(Box::new(doc)),
        Err(PlanError::Transient(e)) if attempts < max_attempts => {
            PlanOutcome::Retry(retry_after, e)
        }
        Err(PlanError::Transient(e)) => {
            PlanOutcome::Failed(format!("{e} (gave up after {attempts} attempts)"))
        }
        Err(PlanError::Invalid(e)) => PlanOutcome::Failed(e),
    }
}
