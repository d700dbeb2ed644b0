//! Deciding a request (approve or reject, bound to its plan) and withdrawing one.

use berth_domain::{request::Submitted, Actor, Decision, RequestStatus};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::status::set_status;
use crate::{events, DbError};

/// Locks a request and proves it is awaiting a decision.
pub(super) async fn lock_submitted(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<(Submitted, LockedRequest), DbError> {
    let row = sqlx::query!(
        r#"SELECT environment_id, requested_by, status AS "status: RequestStatus", kind, spec
           FROM requests WHERE id = $1 FOR UPDATE"#,
        request_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let submitted = Submitted::new(request_id, row.requested_by, row.status)?;
    Ok((
        submitted,
        LockedRequest {
            environment_id: row.environment_id,
            kind: row.kind,
            spec: row.spec,
        },
    ))
}

/// What a decision needs to know of the request it locked.
pub(super) struct LockedRequest {
    environment_id: Uuid,
    kind: String,
    spec: serde_json::Value,
}

/// The plan an approval binds (checked by the caller, `berth_runs::decide_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalBinding {
    pub plan_id: Uuid,
    pub plan_hash: String,
    /// The capacity line as the approver saw it checked.
    pub capacity: String,
    pub over_capacity: bool,
    /// The approver's reason for approving over capacity.
    pub capacity_override: Option<String>,
}

/// The outcome of [`decide_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub status: RequestStatus,
    pub environment_id: Uuid,
}

/// Approves or rejects a request (the policy refuses self-decisions), updates its environment
/// and records the event, atomically.
pub async fn decide(
    pool: &PgPool,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
) -> Result<RequestStatus, DbError> {
    let mut tx = crate::begin_as(pool, actor).await?;
    let decided = decide_in(&mut tx, request_id, actor, decision, None).await?;
    tx.commit().await?;
    Ok(decided.status)
}

/// [`decide`] inside the caller's transaction, so that what follows an approval (enqueuing
/// the provisioning run) commits or rolls back with it. The event records exactly what was
/// decided: the request's kind and specification as they stood, and for an approval the plan
/// it binds (its hash, the capacity line and any override reason).
pub async fn decide_in(
    conn: &mut PgConnection,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
    binding: Option<&ApprovalBinding>,
) -> Result<Decided, DbError> {
    let (submitted, locked) = lock_submitted(&mut *conn, request_id).await?;
    let decided = submitted.decide(actor, decision)?;
    let status = decided.decision.target();
    let binding = binding.filter(|_| status == RequestStatus::Approved);
    sqlx::query!(
        "UPDATE requests SET decided_by = $2, decided_at = now(), decision_note = $3,
                approved_plan_id = $4, capacity_override = $5
         WHERE id = $1",
        decided.request_id,
        decided.decided_by,
        decided.decision.note(),
        binding.map(|b| b.plan_id),
        binding.and_then(|b| b.capacity_override.as_deref())
    )
    .execute(&mut *conn)
    .await?;
    move_from_submitted(&mut *conn, request_id, status).await?;
    let kind = match status {
        RequestStatus::Approved => events::kind::REQUEST_APPROVED,
        _ => events::kind::REQUEST_REJECTED,
    };
    events::append(
        &mut *conn,
        locked.environment_id,
        Some(request_id),
        Some(actor.user_id),
        kind,
        json!({
            "note": decided.decision.note(),
            "request_kind": locked.kind,
            "spec": locked.spec,
            "plan_id": binding.map(|b| b.plan_id),
            "plan_hash": binding.map(|b| b.plan_hash.as_str()),
            "capacity": binding.map(|b| b.capacity.as_str()),
            "over_capacity": binding.map(|b| b.over_capacity),
            "capacity_override": binding.and_then(|b| b.capacity_override.as_deref()),
        }),
    )
    .await?;
    tracing::info!(%request_id, %status, "request decided");
    Ok(Decided {
        status,
        environment_id: locked.environment_id,
    })
}

/// Withdraws a request still awaiting a decision; only its requester may.
pub async fn withdraw(pool: &PgPool, request_id: Uuid, actor: &Actor) -> Result<(), DbError> {
    let mut tx = crate::begin_as(pool, actor).await?;
    let (submitted, locked) = lock_submitted(&mut tx, request_id).await?;
    let environment_id = locked.environment_id;
    let withdrawn = submitted.withdraw(actor)?;
    move_from_submitted(&mut tx, withdrawn.request_id, RequestStatus::Withdrawn).await?;
    events::append(
        &mut tx,
        environment_id,
        Some(request_id),
        Some(withdrawn.withdrawn_by),
        events::kind::REQUEST_WITHDRAWN,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A decision or withdrawal of a request the caller locked as `submitted`: [`set_status`] must
/// move it (it stands where the proof said).
pub(super) async fn move_from_submitted(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
) -> Result<(), DbError> {
    if set_status(conn, request_id, to).await? {
        Ok(())
    } else {
        Err(DbError::Corrupt(format!(
            "a submitted request could not become {to}"
        )))
    }
}
