//! Deciding a request and, on approval, enqueuing its provisioning run — one transaction, so
//! an approved request always has its run and a failed enqueue leaves the request undecided.
//! An approval binds the plan the admin saw: refused unless it is the request's current plan,
//! ready, fitting the cluster (or overridden with a reason), and made from this server's
//! templates and settings.

use std::collections::BTreeMap;

use berth_blueprint::Templates;
use berth_db::requests::ApprovalBinding;
use berth_domain::{
    plan::check_approval,
    policy::{authorize, Action},
    Actor, ApprovalTerms, Decision, PlanDocument, PlanRefusal, PlanStatus, RequestStatus,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::EngineError;
use crate::plans::{committed_quota, enqueue_plan, PlanReason};
use crate::{store, RunId};

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionOutcome {
    pub status: RequestStatus,
    pub environment_id: Uuid,
    /// The run enqueued by an approval.
    pub run: Option<RunId>,
}

/// What an approval is checked against besides the stored plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApprovalContext<'a> {
    /// This server's fingerprint of each blueprint's templates and the operator settings
    /// (`berth_provisioner::Provisioner::setup_digests`); `None` when this server runs no
    /// worker and cannot tell (the worker still checks before it acts).
    pub setup_digests: Option<&'a BTreeMap<String, String>>,
}

/// Approves or rejects `request_id` as `actor`. An approval needs `terms` (the plan's hash the
/// admin saw, and an override reason when over capacity) and enqueues a run of the
/// environment's blueprint as loaded in `templates`, bound to that plan; a blueprint this server
/// does not have is a conflict and nothing is decided. When the plan was made from other
/// templates or settings than this server's, a fresh plan is queued and the approval refused.
#[tracing::instrument(skip_all, fields(request_id = %request_id))]
pub async fn decide_request(
    pool: &PgPool,
    templates: &Templates,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
    terms: Option<&ApprovalTerms>,
    ctx: ApprovalContext<'_>,
) -> Result<DecisionOutcome, EngineError> {
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let binding = match (&decision, terms) {
        (Decision::Approve { .. }, Some(terms)) => {
            match bind_plan(&mut tx, request_id, actor, terms, ctx).await? {
                Ok(binding) => Some(binding),
                Err(Stale { environment_id }) => {
                    tx.rollback().await?;
                    let mut tx = pool.begin().await?;
                    enqueue_plan(&mut tx, request_id, environment_id, PlanReason::Stale, None)
                        .await?;
                    tx.commit().await?;
                    return Err(EngineError::Conflict(PlanRefusal::Changed.to_string()));
                }
            }
        }
        (Decision::Approve { .. }, None) => {
            // Who may decide is said before what is wrong with the approval.
            lock_for_decision(&mut tx, request_id, actor).await?;
            return Err(EngineError::Invalid(
                "an approval must name the plan it approves".into(),
            ));
        }
        (Decision::Reject { .. }, _) => None,
    };
    let plan_id = binding.as_ref().map(|b| b.plan_id);
    let decided =
        berth_db::requests::decide_in(&mut tx, request_id, actor, decision, binding.as_ref())
            .await?;
    let mut run = None;
    if decided.status == RequestStatus::Approved {
        let name = sqlx::query_scalar!(
            "SELECT blueprint FROM environments WHERE id = $1",
            decided.environment_id
        )
        .fetch_one(&mut *tx)
        .await?;
        // The version the approved plan was made from (the newest for runs without a plan).
        let version = match plan_id {
            Some(id) => {
                sqlx::query_scalar!(
                    "SELECT document->'inputs'->>'blueprint_version' FROM plans WHERE id = $1",
                    id
                )
                .fetch_one(&mut *tx)
                .await?
            }
            None => None,
        };
        let found = match &version {
            Some(v) => templates.blueprint_at(&name, v),
            None => templates.blueprint(&name),
        };
        let blueprint = found.ok_or_else(|| {
            EngineError::Conflict(format!(
                "the blueprint '{name}' {} is not installed on this server; nothing was approved",
                version.as_deref().unwrap_or_default()
            ))
        })?;
        run = Some(
            store::enqueue_run(
                &mut tx,
                request_id,
                decided.environment_id,
                blueprint,
                actor.user_id,
                plan_id,
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

/// The request, locked, once the actor is known to be allowed to decide it and it awaits a
/// decision.
struct Deciding {
    environment_id: Uuid,
    blueprint: String,
}

async fn lock_for_decision(
    conn: &mut PgConnection,
    request_id: Uuid,
    actor: &Actor,
) -> Result<Deciding, EngineError> {
    let r = sqlx::query!(
        r#"SELECT r.requested_by, r.environment_id, r.status AS "status: RequestStatus",
                  e.blueprint
           FROM requests r JOIN environments e ON e.id = r.environment_id
           WHERE r.id = $1 FOR UPDATE OF r"#,
        request_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound("request"))?;
    authorize(
        Some(actor),
        Action::DecideRequest {
            requested_by: r.requested_by,
        },
    )?;
    if r.status != RequestStatus::Submitted {
        return Err(EngineError::Db(
            berth_domain::TransitionError::NotSubmitted(r.status).into(),
        ));
    }
    Ok(Deciding {
        environment_id: r.environment_id,
        blueprint: r.blueprint,
    })
}

/// The current plan was made from other templates or settings than this server's.
struct Stale {
    environment_id: Uuid,
}

/// Checks the approver may decide (before anything about the plan is said), then that the
/// request's current plan is the one they saw and may be approved.
async fn bind_plan(
    conn: &mut PgConnection,
    request_id: Uuid,
    actor: &Actor,
    terms: &ApprovalTerms,
    ctx: ApprovalContext<'_>,
) -> Result<Result<ApprovalBinding, Stale>, EngineError> {
    let r = lock_for_decision(&mut *conn, request_id, actor).await?;
    let plan = sqlx::query!(
        r#"SELECT id, status AS "status: PlanStatus", hash, document, error FROM plans
           WHERE request_id = $1 ORDER BY created_at DESC, id LIMIT 1"#,
        request_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| EngineError::Conflict(PlanRefusal::Missing.to_string()))?;
    let doc: Option<PlanDocument> = plan
        .document
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| EngineError::Corrupt(format!("plan {}: {e}", plan.id)))?;
    let capacity = match &doc {
        Some(d) => Some(
            d.capacity
                .with_committed(committed_quota(&mut *conn, r.environment_id).await?),
        ),
        None => None,
    };
    check_approval(
        plan.status,
        plan.hash.as_deref(),
        plan.error.as_deref(),
        capacity.as_ref(),
        terms,
    )
    .map_err(|refusal| EngineError::Conflict(refusal.to_string()))?;
    let (Some(doc), Some(capacity), Some(hash)) = (doc, capacity, plan.hash) else {
        return Err(EngineError::Corrupt(format!(
            "ready plan {} without content",
            plan.id
        )));
    };
    let key = format!("{}@{}", r.blueprint, doc.inputs.blueprint_version);
    if let Some(current) = ctx.setup_digests.and_then(|m| m.get(&key)) {
        if *current != doc.inputs.setup_digest {
            tracing::info!(plan_id = %plan.id, "plan made from other templates or settings; replanning");
            return Ok(Err(Stale {
                environment_id: r.environment_id,
            }));
        }
    }
    Ok(Ok(ApprovalBinding {
        plan_id: plan.id,
        plan_hash: hash,
        capacity: capacity.summary(),
        over_capacity: !capacity.fits(),
        capacity_override: terms
            .capacity_override
            .as_ref()
            .filter(|_| !capacity.fits())
            .map(|n| n.as_str().to_owned()),
    }))
}
