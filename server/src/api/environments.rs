//! `GET /api/v1/environments` and `GET /api/v1/environments/{id}`.

use app::api::{history::list_filter_of, paging};
use axum::{extract::Path, Json};
use berth_domain::{Action, EnvironmentStatus, Size};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    caller::Caller,
    problem::{refused_parameters, ApiQuery, Problem},
};

/// An environment as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: EnvironmentStatus,
    pub blueprint: String,
    pub size: Size,
    /// Display name of whoever asked for it.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// One page of environments, newest change first. `next`/`previous` are cursors to pass as
/// `after`/`before`; absent at either end.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentPage {
    pub items: Vec<EnvironmentSummary>,
    pub next: Option<String>,
    pub previous: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of a name or short name (case-insensitive, literal).
    pub q: Option<String>,
    /// Only environments in this status.
    pub status: Option<EnvironmentStatus>,
    /// A `next` cursor from a previous page.
    pub after: Option<String>,
    /// A `previous` cursor from a previous page.
    pub before: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Lists the company's environments.
#[utoipa::path(
    get,
    operation_id = "listEnvironments",
    path = "/environments",
    params(ListQuery),
    responses(
        (status = 200, body = EnvironmentPage),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "environments"
)]
pub async fn list(
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<EnvironmentPage>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Problem::invalid_field("limit", "'limit' is from 1 to 100."));
    }
    let filter = list_filter_of(q.status, q.q.as_deref().unwrap_or_default());
    let (after, before) = (
        q.after.as_deref().unwrap_or_default(),
        q.before.as_deref().unwrap_or_default(),
    );
    let cursor = paging::list_cursor(after, before).map_err(|e| {
        refused_parameters(e, &[("after", after), ("before", before)], |some| {
            let value = |f: &str| some.iter().find(|(g, _)| *g == f).map_or("", |(_, v)| *v);
            paging::list_cursor(value("after"), value("before")).map(|_| ())
        })
    })?;
    let s = &caller.services;
    let page = berth_db::lists::environments(&s.pool, s.company.id, &filter, cursor, limit).await?;
    let link = |c: Option<berth_db::lists::ListCursor>| {
        c.and_then(|c| paging::list_link(c).param().map(|(_, t)| t.to_owned()))
    };
    Ok(Json(EnvironmentPage {
        next: link(page.next),
        previous: link(page.previous),
        items: page
            .rows
            .into_iter()
            .map(|r| EnvironmentSummary {
                id: r.id,
                name: r.name,
                slug: r.slug,
                status: r.status,
                blueprint: r.blueprint.to_string(),
                size: r.size,
                created_by: r.created_by_name,
                updated_at: r.updated_at,
            })
            .collect(),
    }))
}

/// An environment with its spec.
#[derive(Debug, Serialize, ToSchema)]
pub struct Environment {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub status: EnvironmentStatus,
    pub blueprint: String,
    pub size: Size,
    /// The blueprint version deployed; absent until the first run succeeds.
    pub blueprint_version: Option<String>,
    /// Per-app value overrides in force, by app then value name.
    #[schema(value_type = Object)]
    pub overrides: serde_json::Value,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Reads one environment of the company.
#[utoipa::path(
    get,
    operation_id = "getEnvironment",
    path = "/environments/{id}",
    params(("id" = Uuid, Path, description = "The environment's id")),
    responses(
        (status = 200, body = Environment),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "environments"
)]
pub async fn get(caller: Caller, Path(id): Path<String>) -> Result<Json<Environment>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = Uuid::parse_str(id.trim())
        .map_err(|_| Problem::bad_request("The environment id is not a UUID."))?;
    let s = &caller.services;
    let e = berth_db::requests::get_environment(&s.pool, id)
        .await?
        .ok_or_else(|| Problem::from(app::error::AppError::NotFound))?;
    Ok(Json(Environment {
        id: e.id,
        name: e.name,
        slug: e.slug,
        description: e.description,
        owner_contact: e.owner_contact,
        status: e.status,
        blueprint: e.blueprint.to_string(),
        size: e.size,
        blueprint_version: e.blueprint_version,
        overrides: e.overrides,
        created_by: e.created_by_name,
        created_at: e.created_at,
    }))
}
