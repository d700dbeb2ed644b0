//! Requesting a business unit, and deciding on requests.

use berth_domain::{BlueprintName, RequestStatus, Size, SpecErrors};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub environment_name: String,
    pub kind: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub blueprint: BlueprintName,
    pub size: Size,
    pub status: RequestStatus,
    pub requested_by: String,
    pub requested_at: Stamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Stamp>,
    pub decision_note: Option<String>,
    /// Whether the viewer may approve or reject, or why not (shown next to the absent buttons).
    pub can_decide: Result<(), String>,
    pub can_withdraw: bool,
}

#[cfg(feature = "ssr")]
impl RequestView {
    pub(crate) fn new(r: berth_db::requests::Request, viewer: &berth_domain::Actor) -> Self {
        use berth_domain::{policy::authorize, Action};
        let open = r.status == RequestStatus::Submitted;
        let can_decide = if open {
            authorize(
                Some(viewer),
                Action::DecideRequest {
                    requested_by: r.requested_by,
                },
            )
            .map_err(|d| match d {
                // Not a refusal to the person waiting for the decision: say what happens next.
                berth_domain::Denied::NeedsRole(berth_domain::Role::Admin) => {
                    "An admin reviews this request; approving it starts the provisioning.".into()
                }
                d => d.to_string(),
            })
        } else {
            Err(format!("This request is {}.", r.status))
        };
        let can_withdraw = open
            && authorize(
                Some(viewer),
                Action::WithdrawRequest {
                    requested_by: r.requested_by,
                },
            )
            .is_ok();
        Self {
            id: r.id,
            environment_id: r.environment_id,
            environment_name: r.environment_name,
            kind: r.kind.as_str().to_owned(),
            name: r.spec.name.to_string(),
            slug: r.spec.slug.to_string(),
            description: r.spec.description.as_str().to_owned(),
            owner_contact: r.spec.owner_contact.as_str().to_owned(),
            blueprint: r.spec.blueprint,
            size: r.spec.size,
            status: r.status,
            requested_by: r.requested_by_name,
            requested_at: r.created_at.into(),
            decided_by: r.decided_by_name,
            decided_at: r.decided_at.map(Into::into),
            decision_note: r.decision_note,
            can_decide,
            can_withdraw,
        }
    }
}

/// The outcome of submitting the request form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitOutcome {
    /// Stored; the browser is redirected to the request's page.
    Created { request_id: Uuid },
    /// One or more fields were refused; nothing was stored.
    Invalid(SpecErrors),
}

/// Submits a request for a new business unit.
#[server(endpoint = "submit_request", output = super::codec::JsonOut)]
pub async fn submit_request(
    name: String,
    slug: String,
    description: String,
    owner_contact: String,
    blueprint: String,
    size: String,
) -> Result<SubmitOutcome, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::CreateRequest).await?;
        let form = NewUnitForm {
            name,
            slug,
            description,
            owner_contact,
            blueprint,
            size,
        };
        match submit(&s, &actor, &form).await {
            Ok(request_id) => {
                leptos_axum::redirect(&format!("/requests/{request_id}"));
                Ok(SubmitOutcome::Created { request_id })
            }
            Err(AppError::Fields(errors)) => Ok(SubmitOutcome::Invalid(errors)),
            Err(e) => Err(e),
        }
    })
    .await
}

/// The request form's fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUnitForm {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub blueprint: String,
    pub size: String,
}

/// Stores a request for a new business unit (and queues its plan) for an actor the caller has
/// authorized; refused fields, and a name or short name already taken, come back as
/// [`AppError::Fields`]. The page's server function and the API both call this.
#[cfg(feature = "ssr")]
pub async fn submit(
    s: &super::guard::Services,
    actor: &berth_domain::Actor,
    form: &NewUnitForm,
) -> Result<Uuid, AppError> {
    let spec = berth_domain::RequestSpec::parse(
        &form.name,
        &form.slug,
        &form.description,
        &form.owner_contact,
        &form.blueprint,
        &form.size,
    )
    .map_err(AppError::Fields)?;
    match berth_runs::plans::submit_request(&s.pool, s.company.id, actor, &spec).await {
        Ok(sub) => Ok(sub.request_id),
        Err(berth_runs::EngineError::Db(berth_db::DbError::Taken { field, message })) => {
            let mut errors = SpecErrors::default();
            errors.push(field, message);
            Err(AppError::Fields(errors))
        }
        Err(e) => Err(e.into()),
    }
}

/// One request, with what the viewer may do with it.
#[server(endpoint = "get_request", output = super::codec::JsonOut)]
pub async fn get_request(id: Uuid) -> Result<RequestView, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        let r = berth_db::requests::get_request(&s.pool, id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(RequestView::new(r, &actor))
    })
    .await
}

/// Approves (`decision = "approve"`, optional note) or rejects (`"reject"`, reason required).
/// Refused with 403 for anyone but an admin other than the requester. An approval names the
/// plan the admin saw (`plan_hash`) and, when it exceeds the cluster's capacity, carries
/// `override_capacity` with a reason; it is refused with 409 when the plan changed meanwhile.
/// It enqueues the provisioning run, bound to that plan, in the same transaction.
#[server(endpoint = "decide_request", output = super::codec::JsonOut)]
pub async fn decide_request(
    id: Uuid,
    decision: String,
    note: String,
    #[server(default)] plan_hash: String,
    #[server(default)] override_capacity: Option<String>,
    #[server(default)] override_reason: String,
) -> Result<RequestStatus, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let source_addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        decide(
            &s,
            &actor,
            source_addr,
            id,
            &DecisionForm {
                decision,
                note,
                plan_hash,
                override_capacity: override_capacity.is_some_and(|v| !v.is_empty()),
                override_reason,
            },
        )
        .await
    })
    .await
}

/// An admin's decision as typed: `approve` (optional note, the plan's hash, and an override of
/// the cluster's capacity with a reason) or `reject` (reason required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionForm {
    pub decision: String,
    pub note: String,
    pub plan_hash: String,
    pub override_capacity: bool,
    pub override_reason: String,
}

/// Decides a request for `actor` (the policy, separation of duties included, is checked in the
/// core; a refusal is recorded in the audit trail); the page's server function and the API
/// both call this.
#[cfg(feature = "ssr")]
pub async fn decide(
    s: &super::guard::Services,
    actor: &berth_domain::Actor,
    source_addr: Option<String>,
    id: Uuid,
    form: &DecisionForm,
) -> Result<RequestStatus, AppError> {
    let result = decide_unaudited(s, actor, id, form).await;
    let what = format!("decide request {id}");
    super::guard::audited(s, actor, &what, source_addr, result).await
}

#[cfg(feature = "ssr")]
async fn decide_unaudited(
    s: &super::guard::Services,
    actor: &berth_domain::Actor,
    id: Uuid,
    form: &DecisionForm,
) -> Result<RequestStatus, AppError> {
    let decision = berth_domain::Decision::parse(&form.decision, &form.note)
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    // A malformed approval is reported after the policy had its say (403 before 422).
    let (terms, bad_terms) = match decision {
        berth_domain::Decision::Approve { .. } => match berth_domain::ApprovalTerms::parse(
            &form.plan_hash,
            form.override_capacity,
            &form.override_reason,
        ) {
            Ok(t) => (Some(t), None),
            Err(m) => (None, Some(m)),
        },
        berth_domain::Decision::Reject { .. } => (None, None),
    };
    let ctx = berth_runs::ApprovalContext {
        setup_digests: s.plan_setup.as_deref(),
    };
    let outcome = berth_runs::decide_request(
        &s.pool,
        &s.templates,
        id,
        actor,
        decision,
        terms.as_ref(),
        ctx,
    )
    .await
    .map_err(|e| match (e, bad_terms) {
        (berth_runs::EngineError::Invalid(_), Some(m)) => AppError::Invalid(m),
        (e, _) => e.into(),
    })?;
    Ok(outcome.status)
}

/// Withdraws one's own request while it awaits a decision.
#[server(endpoint = "withdraw_request", output = super::codec::JsonOut)]
pub async fn withdraw_request(id: Uuid) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let source_addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        withdraw(&s, &actor, source_addr, id).await
    })
    .await
}

/// Withdraws request `id` for `actor` (only the requester may; a refusal is recorded in the
/// audit trail); the page's server function and the API both call this.
#[cfg(feature = "ssr")]
pub async fn withdraw(
    s: &super::guard::Services,
    actor: &berth_domain::Actor,
    source_addr: Option<String>,
    id: Uuid,
) -> Result<(), AppError> {
    let result = berth_db::requests::withdraw(&s.pool, id, actor)
        .await
        .map_err(AppError::from);
    let what = format!("withdraw request {id}");
    super::guard::audited(s, actor, &what, source_addr, result).await
}
