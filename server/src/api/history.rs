//! An environment's history over the API: pages of its timeline, the auditors' export (CSV or
//! JSON, streamed), and live progress as server-sent events.

use std::net::SocketAddr;

use app::api::history::HistoryQuery;
use axum::{
    extract::{ConnectInfo, Path, State},
    response::Response,
    Json,
};
use berth_db::history::Cursor;
use berth_domain::Action;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    caller::Caller,
    parse_id,
    problem::{refused_parameters, ApiQuery, Problem},
};
use crate::{routes, state::AppState};

/// One event of an environment's timeline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: i64,
    /// `request.submitted`, `run.started`, `step.failed`, …
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Who acted (a person or a service account), when someone did.
    pub actor: Option<String>,
    /// The name of the API token they acted with, when they used one.
    pub token: Option<String>,
    pub request_id: Option<Uuid>,
    /// The event's stored details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A page of events, oldest first. Pass `next` as `after` for the following page and
/// `previous` as `before` for the one before.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: Option<i64>,
    pub previous: Option<i64>,
}

/// The timeline's filters and cursor.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// A group (`requests`, `runs`, `steps`, `errors`), a prefix ending in `.`, or one kind.
    pub kind: Option<String>,
    /// `YYYY-MM-DD` (start of that day, UTC) or an RFC 3339 time; inclusive.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (the whole day is included) or an RFC 3339 time (exclusive).
    pub to: Option<String>,
    /// Events after this id.
    pub after: Option<String>,
    /// Events before this id.
    pub before: Option<String>,
    /// `latest` for the newest page.
    pub page: Option<String>,
}

impl PageQuery {
    fn history(self) -> HistoryQuery {
        HistoryQuery {
            kind: self.kind.unwrap_or_default(),
            from: self.from.unwrap_or_default(),
            to: self.to.unwrap_or_default(),
            after: self.after.unwrap_or_default(),
            before: self.before.unwrap_or_default(),
            page: self.page.unwrap_or_default(),
        }
    }
}

/// A refused timeline query as a 422 naming each refused parameter.
fn refused(err: app::error::AppError, q: &HistoryQuery) -> Problem {
    let given = [
        ("kind", q.kind.as_str()),
        ("from", q.from.as_str()),
        ("to", q.to.as_str()),
        ("after", q.after.as_str()),
        ("before", q.before.as_str()),
        ("page", q.page.as_str()),
    ];
    refused_parameters(err, &given, |some| {
        let mut q = HistoryQuery::default();
        for &(field, value) in some {
            let slot = match field {
                "kind" => &mut q.kind,
                "from" => &mut q.from,
                "to" => &mut q.to,
                "after" => &mut q.after,
                "before" => &mut q.before,
                _ => &mut q.page,
            };
            *slot = value.to_owned();
        }
        q.filter().and(q.cursor()).map(|_| ())
    })
}

fn cursor_id(c: Option<Cursor>) -> Option<i64> {
    match c? {
        Cursor::After(id) | Cursor::Before(id) => Some(id),
        Cursor::First | Cursor::Latest => None,
    }
}

/// A page of an environment's timeline (50 events).
#[utoipa::path(
    get,
    operation_id = "getHistory",
    path = "/environments/{id}/history",
    params(("id" = Uuid, Path, description = "The environment's id"), PageQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "history"
)]
pub async fn page(
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<EventPage>, Problem> {
    caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "environment")?;
    let q = q.history();
    let (filter, cursor) = match (q.filter(), q.cursor()) {
        (Ok(filter), Ok(cursor)) => (filter, cursor),
        (Err(e), _) | (_, Err(e)) => return Err(refused(e, &q)),
    };
    let pool = &caller.services.pool;
    if !berth_db::history::environment_exists(pool, id).await? {
        return Err(Problem::not_found());
    }
    let page =
        berth_db::history::page(pool, id, &filter, cursor, app::api::history::PAGE_SIZE).await?;
    Ok(Json(EventPage {
        next: cursor_id(page.next),
        previous: cursor_id(page.previous),
        events: page
            .events
            .into_iter()
            .map(|e| Event {
                id: e.id,
                kind: e.kind,
                at: e.created_at,
                actor: e.actor_name,
                token: e.token_name,
                request_id: e.request_id,
                details: e.details,
            })
            .collect(),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
}

/// The export's format and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (one row per event) or `json` (one array).
    pub format: ExportFormat,
    /// As for the history pages.
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An environment's whole history (filtered), streamed as CSV or JSON (auditors and admins).
#[utoipa::path(
    get,
    operation_id = "exportHistory",
    path = "/environments/{id}/history/export",
    params(("id" = Uuid, Path, description = "The environment's id"), ExportQuery),
    responses(
        (status = 200, description = "The events, oldest first",
         content((String = "text/csv"), (Vec<Object> = "application/json"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "history"
)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, Problem> {
    let actor = caller.allow(Action::ExportHistory).await?;
    let id = parse_id(&id, "environment")?;
    let query = HistoryQuery {
        kind: q.kind.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        ..Default::default()
    };
    if let Err(e) = query.filter() {
        return Err(refused(e, &query));
    }
    let format = match q.format {
        ExportFormat::Csv => routes::export::Format::Csv,
        ExportFormat::Json => routes::export::Format::Json,
    };
    Ok(routes::export::history_for(
        &caller.services,
        &state.exports,
        &actor,
        peer,
        id,
        &query,
        format,
    )
    .await?)
}

/// Live progress: a `progress` event with the environment's provisioning snapshot (run, steps,
/// stack) on connect and after every change.
#[utoipa::path(
    get,
    operation_id = "streamProgress",
    path = "/environments/{id}/progress",
    params(("id" = Uuid, Path, description = "The environment's id")),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"])),
    tag = "history"
)]
pub async fn progress(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = caller.allow(Action::ReadEnvironments).await?;
    let id = parse_id(&id, "environment")?;
    if !berth_db::history::environment_exists(&caller.services.pool, id).await? {
        return Err(Problem::not_found());
    }
    let slot = state
        .progress
        .open_stream(format!("token:{}", caller.token.id))?;
    let recheck = caller.recheck(Action::ReadEnvironments);
    Ok(routes::progress::environment_stream(
        &state, &actor, id, slot, recheck,
    ))
}
