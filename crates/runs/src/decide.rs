//! Deciding a request and, on approval, enqueuing its provisioning run — one transaction, so
//! an approved request always has its run and a failed enqueue leaves the request undecided.

use berth_blueprint::Templates;
use berth_domain::{Actor, Decision, RequestStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::EngineError;
use crate::{store, RunId};

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionOutcome {
    pub status: RequestStatus,
    pub environment_id: Uuid,
    /// The run enqueued by an approval.
    pub run: Option<RunId>,
}

/// Approves or rejects `request_id` as `actor`. An approval enqueues a run of the
/// environment's blueprint as loaded in `templates`; a blueprint this server does not have is
/// a conflict and nothing is decided.
#[tracing::instrument(skip_all, fields(request_id = %request_id))]
pub async fn decide_request(
    pool: &PgPool,
    templates: &Templates,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
) -> Result<DecisionOutcome, EngineError> {
    let mut tx = pool.begin().await?;
    let decided = berth_db::requests::decide_in(&mut tx, request_id, actor, decision).await?;
    let mut run = None;
    if decided.status == RequestStatus::Approved {
        let name = sqlx::query_scalar!(
            "SELECT blueprint FROM environments WHERE id = $1",
            decided.environment_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let blueprint = templates.blueprint(&name).ok_or_else(|| {
            EngineError::Conflict(format!(
                "the blueprint '{name}' is not installed on this server; nothing was approved"
            ))
        })?;
        run = Some(
            store::enqueue_run(
                &mut tx,
                request_id,
                decided.environment_id,
                blueprint,
                actor.user_id,
            )
            .await?,
        );
    }
    tx.commit().await?;
    Ok(DecisionOutcome {
        status: decided.status,
        environment_id: decided.environment_id,
        run,
    })
}
