//! Requests over the API: ask for a new business unit, a change, a return or a decommission;
//! read a request and its plan; approve (carrying the plan's hash), reject, withdraw. Each
//! handler checks the caller and calls the same core the pages call.

use app::api::{lifecycle, requests as core};
use axum::{extract::Path, http::StatusCode, Json};
use berth_domain::{Action, RequestKind, RequestStatus, Size};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    caller::Caller,
    idempotency::{Idempotent, Replayable},
    parse_id,
    problem::Problem,
    ApiJson,
};

/// A request: what was asked for, by whom, and where it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Request {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub environment_name: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub blueprint: String,
    pub size: Size,
    /// Display name of whoever asked.
    pub requested_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: OffsetDateTime,
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    /// The approval's note or the rejection's reason.
    pub decision_note: Option<String>,
}

impl From<berth_db::requests::Request> for Request {
    fn from(r: berth_db::requests::Request) -> Self {
        Request {
            id: r.id,
            environment_id: r.environment_id,
            environment_name: r.environment_name,
            kind: r.kind,
            status: r.status,
            name: r.spec.name.to_string(),
            slug: r.spec.slug.to_string(),
            description: r.spec.description.as_str().to_owned(),
            owner_contact: r.spec.owner_contact.as_str().to_owned(),
            blueprint: r.spec.blueprint.to_string(),
            size: r.spec.size,
            requested_by: r.requested_by_name,
            requested_at: r.created_at,
            decided_by: r.decided_by_name,
            decided_at: r.decided_at,
            decision_note: r.decision_note,
        }
    }
}

async fn read(caller: &Caller, id: Uuid) -> Result<Request, Problem> {
    berth_db::requests::get_request(&caller.services.pool, id)
        .await?
        .map(Request::from)
        .ok_or_else(Problem::not_found)
}

/// A new business unit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "California charging stations", "slug": "ca-charging",
    "description": "Chargers on the West Coast", "owner_contact": "ops@seaview.example",
    "blueprint": "insight", "size": "small"
}))]
pub struct NewUnit {
    /// The unit's name as people read it: letters, digits, spaces and `&'.,()-`.
    #[schema(min_length = 2, max_length = 64)]
    pub name: String,
    /// Its short name: lowercase letters, digits and single dashes, starting with a letter;
    /// names the namespace and the stack. Some names are reserved (`kube-…`, `default`, …).
    #[schema(min_length = 2, max_length = 40, pattern = "^[a-z](-?[a-z0-9])+$")]
    pub slug: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Who answers for the unit (an email address).
    #[schema(format = Email)]
    pub owner_contact: String,
    /// A blueprint the company publishes (the request page lists them).
    pub blueprint: String,
    pub size: Size,
}

/// What a created request answers: 201 with the request, and its URL in `Location`.
type Created = Result<Replayable<Request>, Problem>;

fn created(request: Request) -> Replayable<Request> {
    let location = format!("/api/v1/requests/{}", request.id);
    Replayable::new(StatusCode::CREATED, request).with_location(location)
}

/// Asks for a new business unit; an admin approves its plan before anything is built.
#[utoipa::path(
    post,
    operation_id = "createRequest",
    path = "/requests",
    request_body = NewUnit,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Send the same key again to get the first answer instead of a second request")),
    responses(
        (status = 201, body = Request, headers(("Location" = String))),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["request"])),
    tag = "requests"
)]
pub async fn create(caller: Caller, idem: Idempotent, ApiJson(body): ApiJson<NewUnit>) -> Created {
    let actor = caller.allow(Action::CreateRequest).await?;
    idem.run(&caller, &body, || async {
        let form = core::NewUnitForm {
            name: body.name.clone(),
            slug: body.slug.clone(),
            description: body.description.clone(),
            owner_contact: body.owner_contact.clone(),
            blueprint: body.blueprint.clone(),
            size: body.size.as_str().to_owned(),
        };
        let id = core::submit(&caller.services, &actor, &form).await?;
        Ok(created(read(&caller, id).await?))
    })
    .await
}

/// A change to an environment that is ready or failed. Absent fields keep their current value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub description: Option<String>,
    pub owner_contact: Option<String>,
    pub size: Option<Size>,
    /// A newer published version of the environment's blueprint.
    pub blueprint_version: Option<String>,
    /// Application settings by `<app>.<key>` (those the blueprint lets change); an empty
    /// string returns a setting to the blueprint's default.
    #[serde(default)]
    pub overrides: std::collections::BTreeMap<String, String>,
}

/// Asks for a change to an environment (planned and approved like a new one).
#[utoipa::path(
    post,
    operation_id = "requestChange",
    path = "/environments/{id}/changes",
    params(("id" = Uuid, Path, description = "The environment's id"),
           ("Idempotency-Key" = Option<String>, Header, description = "See POST /requests")),
    request_body = Change,
    responses(
        (status = 201, body = Request, headers(("Location" = String))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["request"])),
    tag = "requests"
)]
pub async fn change(
    caller: Caller,
    idem: Idempotent,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Change>,
) -> Created {
    let actor = caller.allow(Action::RequestChange).await?;
    let environment_id = parse_id(&id, "environment")?;
    idem.run(&caller, &body, || async {
        let s = &caller.services;
        let env = berth_db::requests::get_environment(&s.pool, environment_id)
            .await?
            .ok_or_else(Problem::not_found)?;
        let form = lifecycle::ChangeRequestForm {
            name: None,
            slug: None,
            description: body.description.clone().unwrap_or(env.description),
            owner_contact: body.owner_contact.clone().unwrap_or(env.owner_contact),
            size: body.size.unwrap_or(env.size).as_str().to_owned(),
            blueprint_version: body.blueprint_version.clone().unwrap_or_default(),
            overrides: body.overrides.clone(),
        };
        let request_id = lifecycle::change(s, &actor, environment_id, &form).await?;
        Ok(created(read(&caller, request_id).await?))
    })
    .await
}

/// The environment's name, typed again, so a script cannot remove the wrong one by a slip.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decommission {
    pub confirm: String,
}

/// Asks for an environment to be removed: its charts, namespace and stack (another admin
/// approves).
#[utoipa::path(
    post,
    operation_id = "requestDecommission",
    path = "/environments/{id}/decommission",
    params(("id" = Uuid, Path, description = "The environment's id"),
           ("Idempotency-Key" = Option<String>, Header, description = "See POST /requests")),
    request_body = Decommission,
    responses(
        (status = 201, body = Request, headers(("Location" = String))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["request"])),
    tag = "requests"
)]
pub async fn decommission(
    caller: Caller,
    idem: Idempotent,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Decommission>,
) -> Created {
    let actor = caller.allow(Action::RequestDecommission).await?;
    let environment_id = parse_id(&id, "environment")?;
    idem.run(&caller, &body, || async {
        let s = &caller.services;
        let sub = berth_runs::lifecycle::submit_decommission(
            &s.pool,
            environment_id,
            &actor,
            &body.confirm,
        )
        .await?;
        Ok(created(read(&caller, sub.request_id).await?))
    })
    .await
}

/// Reads one request.
#[utoipa::path(
    get,
    operation_id = "getRequest",
    path = "/requests/{id}",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = Request),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "requests"
)]
pub async fn get(caller: Caller, Path(id): Path<String>) -> Result<Json<Request>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "request")?;
    Ok(Json(read(&caller, id).await?))
}

/// The plan of a request: exactly what an approval builds, bound by its hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub id: Uuid,
    pub request_id: Uuid,
    pub environment_id: Uuid,
    /// `computing`, then `ready` or `failed`.
    pub status: berth_domain::PlanStatus,
    /// What an approval must carry as `plan_hash`; present when ready.
    pub hash: Option<String>,
    pub error: Option<String>,
    /// The stack, secrets, charts and values the plan would apply, and the capacity check.
    #[schema(value_type = Option<Object>)]
    pub document: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
}

/// The request's current plan (404 until one is queued).
#[utoipa::path(
    get,
    operation_id = "getPlan",
    path = "/requests/{id}/plan",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = Plan),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "requests"
)]
pub async fn plan(caller: Caller, Path(id): Path<String>) -> Result<Json<Plan>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "request")?;
    let p = berth_runs::plans::current_plan(&caller.services.pool, id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(Plan {
        id: p.id,
        request_id: p.request_id,
        environment_id: p.environment_id,
        status: p.status,
        hash: p.hash,
        error: p.error,
        document: p
            .document
            .map(|d| serde_json::to_value(d).unwrap_or_default()),
        created_at: p.created_at,
        finished_at: p.finished_at,
    }))
}

/// Asks for the request's plan to be computed again (admins; the request must await a decision).
#[utoipa::path(
    post,
    operation_id = "refreshPlan",
    path = "/requests/{id}/plan",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses(
        (status = 202, description = "A fresh plan is queued; read it with GET"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["operate"])),
    tag = "requests"
)]
pub async fn refresh_plan(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    let actor = caller.allow(Action::RefreshPlan).await?;
    let id = parse_id(&id, "request")?;
    berth_runs::plans::request_plan(&caller.services.pool, id, &actor).await?;
    Ok(StatusCode::ACCEPTED)
}

/// An approval: the hash of the plan reviewed (refused with 409 when the plan changed since),
/// and an override when the plan exceeds the cluster's capacity.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub plan_hash: String,
    #[serde(default)]
    pub note: String,
    /// Approve although the plan exceeds the cluster's capacity; needs `override_reason`.
    #[serde(default)]
    pub override_capacity: bool,
    #[serde(default)]
    pub override_reason: String,
}

/// A rejection, with the reason the requester reads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub reason: String,
}

async fn decide(
    caller: Caller,
    id: &str,
    form: core::DecisionForm,
) -> Result<Json<Request>, Problem> {
    // The token must carry the decide scope; the policy (an admin, not the requester) is
    // checked by the core against the request, as for the page.
    let actor = caller.allow(Action::ReadEnvironments).await?;
    caller.require_scope(berth_domain::token::Scope::Decide)?;
    let id = parse_id(id, "request")?;
    core::decide(&caller.services, &actor, caller.addr(), id, &form).await?;
    Ok(Json(read(&caller, id).await?))
}

/// Approves a request: its run starts, bound to the plan whose hash is given.
#[utoipa::path(
    post,
    operation_id = "approveRequest",
    path = "/requests/{id}/approve",
    params(("id" = Uuid, Path, description = "The request's id")),
    request_body = Approval,
    responses(
        (status = 200, body = Request),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["decide"])),
    tag = "requests"
)]
pub async fn approve(
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Approval>,
) -> Result<Json<Request>, Problem> {
    decide(
        caller,
        &id,
        core::DecisionForm {
            decision: "approve".into(),
            note: body.note,
            plan_hash: body.plan_hash,
            override_capacity: body.override_capacity,
            override_reason: body.override_reason,
        },
    )
    .await
}

/// Rejects a request, with a reason.
#[utoipa::path(
    post,
    operation_id = "rejectRequest",
    path = "/requests/{id}/reject",
    params(("id" = Uuid, Path, description = "The request's id")),
    request_body = Rejection,
    responses(
        (status = 200, body = Request),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["decide"])),
    tag = "requests"
)]
pub async fn reject(
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Rejection>,
) -> Result<Json<Request>, Problem> {
    decide(
        caller,
        &id,
        core::DecisionForm {
            decision: "reject".into(),
            note: body.reason,
            ..Default::default()
        },
    )
    .await
}

/// Withdraws one's own request while it awaits a decision.
#[utoipa::path(
    post,
    operation_id = "withdrawRequest",
    path = "/requests/{id}/withdraw",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses(
        (status = 200, body = Request),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["request"])),
    tag = "requests"
)]
pub async fn withdraw(caller: Caller, Path(id): Path<String>) -> Result<Json<Request>, Problem> {
    // Withdrawing is the requester's; the scope check comes first, the core checks the person.
    let actor = caller.allow(Action::ReadEnvironments).await?;
    caller.require_scope(berth_domain::token::Scope::Request)?;
    let id = parse_id(&id, "request")?;
    core::withdraw(&caller.services, &actor, caller.addr(), id).await?;
    Ok(Json(read(&caller, id).await?))
}
