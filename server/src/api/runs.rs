//! Provisioning runs over the API: an environment's latest run, a run by id, retry and cancel.

use axum::{extract::Path, Json};
use berth_domain::{Action, EnvironmentStatus, RunStatus, StepStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{caller::Caller, parse_id, problem::Problem, ApiJson};

/// A run: the steps that build (or change, or remove) an environment, and where each stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub request_id: Uuid,
    pub status: RunStatus,
    /// The environment's status now.
    pub environment_status: EnvironmentStatus,
    pub blueprint: String,
    pub blueprint_version: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    pub error: Option<String>,
    pub steps: Vec<Step>,
}

/// One step of a run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub name: String,
    /// `ensure_stack`, `read_secrets`, `ensure_namespace`, `deploy_chart`, …
    pub kind: String,
    pub app: Option<String>,
    pub status: StepStatus,
    pub depends_on: Vec<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    pub blocked_reason: Option<String>,
    pub error: Option<String>,
}

async fn load(caller: &Caller, run: berth_runs::RunView) -> Result<Run, Problem> {
    let pool = &caller.services.pool;
    let steps = berth_runs::steps_of_run(pool, run.id).await?;
    let environment = berth_db::requests::get_environment(pool, run.environment_id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Run {
        id: run.id.0,
        environment_id: run.environment_id,
        request_id: run.request_id,
        status: run.status,
        environment_status: environment.status,
        blueprint: run.blueprint,
        blueprint_version: run.blueprint_version,
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        error: run.error,
        steps: steps
            .into_iter()
            .map(|s| Step {
                name: s.name,
                kind: s.kind.to_string(),
                app: s.app,
                status: s.status,
                depends_on: s.depends_on,
                attempts: s.attempts,
                max_attempts: s.max_attempts,
                started_at: s.started_at,
                finished_at: s.finished_at,
                blocked_reason: s.blocked_reason,
                error: s.error,
            })
            .collect(),
    })
}

/// The environment's latest run (404 when it has none yet).
#[utoipa::path(
    get,
    operation_id = "getLatestRun",
    path = "/environments/{id}/run",
    params(("id" = Uuid, Path, description = "The environment's id")),
    responses(
        (status = 200, body = Run),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "runs"
)]
pub async fn latest(caller: Caller, Path(id): Path<String>) -> Result<Json<Run>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "environment")?;
    let run = berth_runs::latest_run(&caller.services.pool, id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(load(&caller, run).await?))
}

/// One run.
#[utoipa::path(
    get,
    operation_id = "getRun",
    path = "/runs/{id}",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, body = Run),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "runs"
)]
pub async fn get(caller: Caller, Path(id): Path<String>) -> Result<Json<Run>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "run")?;
    let run = berth_runs::run(&caller.services.pool, berth_runs::RunId(id))
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(load(&caller, run).await?))
}

/// Why an operator retries or cancels a run (recorded on the timeline).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub reason: String,
}

async fn operate(
    caller: Caller,
    id: &str,
    reason: &str,
    retry: bool,
) -> Result<Json<Run>, Problem> {
    let actor = caller.allow(Action::OperateRuns).await?;
    let id = berth_runs::RunId(parse_id(id, "run")?);
    let pool = &caller.services.pool;
    let done = if retry {
        berth_runs::retry_run(pool, id, &actor, reason).await
    } else {
        berth_runs::cancel_run(pool, id, &actor, reason).await
    };
    done?;
    let run = berth_runs::run(pool, id)
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(load(&caller, run).await?))
}

/// Retries a failed or cancelled run from where it stopped.
#[utoipa::path(
    post,
    operation_id = "retryRun",
    path = "/runs/{id}/retry",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body = Operation,
    responses(
        (status = 200, body = Run),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["operate"])),
    tag = "runs"
)]
pub async fn retry(
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Operation>,
) -> Result<Json<Run>, Problem> {
    operate(caller, &id, &body.reason, true).await
}

/// Cancels a run in progress.
#[utoipa::path(
    post,
    operation_id = "cancelRun",
    path = "/runs/{id}/cancel",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body = Operation,
    responses(
        (status = 200, body = Run),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["operate"])),
    tag = "runs"
)]
pub async fn cancel(
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Operation>,
) -> Result<Json<Run>, Problem> {
    operate(caller, &id, &body.reason, false).await
}
