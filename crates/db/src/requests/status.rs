//! A request's status and its environment's, moved together through the domain's transition
//! table; the spec a finished change leaves in force.

use berth_domain::{EnvironmentStatus, RequestKind, RequestSpec, RequestStatus, Size};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// The one way a request's status changes, and its environment's with it (through
/// `EnvironmentStatus::follows`: a create request's status is its environment's, a change shows
/// `changing`, a decommission `decommissioning` then `decommissioned`). Moves only from a status
/// the domain's transition table allows (`RequestStatus::can_become`; the database triggers hold
/// the same tables): returns `false` and changes nothing when the request stands elsewhere, e.g.
/// already at `to` (a retried run whose request went back to `provisioning` earlier). Events are
/// the caller's: each transition records its own details.
pub async fn set_status(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
) -> Result<bool, DbError> {
    set_status_after(conn, request_id, to, false).await
}

/// [`set_status`] for a failed change whose run rolled every app back (`rolled_back`): the
/// environment stays `ready` on its previous spec while the request fails.
pub async fn set_status_after(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
    rolled_back: bool,
) -> Result<bool, DbError> {
    let from: Vec<String> = RequestStatus::ALL
        .into_iter()
        .filter(|s| s.can_become(to))
        .map(|s| s.to_string())
        .collect();
    // Back to awaiting a decision (re-approval) clears the decision; the events keep it.
    let moved = sqlx::query!(
        r#"UPDATE requests SET status = $2,
                decided_by = CASE WHEN $2 = 'submitted' THEN NULL ELSE decided_by END,
                decided_at = CASE WHEN $2 = 'submitted' THEN NULL ELSE decided_at END,
                decision_note = CASE WHEN $2 = 'submitted' THEN NULL ELSE decision_note END,
                approved_plan_id = CASE WHEN $2 = 'submitted' THEN NULL ELSE approved_plan_id END,
                capacity_override = CASE WHEN $2 = 'submitted' THEN NULL ELSE capacity_override END
         WHERE id = $1 AND status = ANY($3)
         RETURNING environment_id, kind AS "kind: RequestKind""#,
        request_id,
        to as RequestStatus,
        &from
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(moved) = moved else {
        return Ok(false);
    };
    let current = sqlx::query_scalar!(
        r#"SELECT status AS "status: EnvironmentStatus" FROM environments WHERE id = $1 FOR UPDATE"#,
        moved.environment_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let next = current.follows(moved.kind, to, rolled_back);
    if next != current {
        if !current.can_become(next) {
            return Err(DbError::Corrupt(format!(
                "environment {} cannot go from {current} to {next}",
                moved.environment_id
            )));
        }
        sqlx::query!(
            "UPDATE environments SET status = $2, updated_at = now(),
                    decommissioned_at = CASE WHEN $2 = 'decommissioned' THEN now() END
             WHERE id = $1",
            moved.environment_id,
            next as EnvironmentStatus
        )
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE environments SET updated_at = now() WHERE id = $1",
            moved.environment_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// After a run of `request_id` succeeded: the environment's current specification becomes the
/// request's (a change's new size, description, owner, overrides) and `blueprint_version` the one
/// the run deployed. A decommission's spec is the current one, so nothing moves.
pub async fn apply_spec(
    conn: &mut PgConnection,
    request_id: Uuid,
    blueprint_version: &str,
) -> Result<(), DbError> {
    let row = sqlx::query!(
        r#"SELECT environment_id, spec, kind AS "kind: RequestKind" FROM requests WHERE id = $1"#,
        request_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if row.kind == RequestKind::Decommission {
        return Ok(());
    }
    let spec: RequestSpec = serde_json::from_value(row.spec)
        .map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?;
    let overrides = serde_json::to_value(&spec.overrides)
        .map_err(|e| DbError::Corrupt(format!("overrides: {e}")))?;
    sqlx::query!(
        "UPDATE environments SET description = $2, owner_contact = $3, size = $4,
                blueprint_version = $5, overrides = $6, updated_at = now()
         WHERE id = $1",
        row.environment_id,
        spec.description.as_str(),
        spec.owner_contact.as_str(),
        spec.size as Size,
        blueprint_version,
        overrides
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
