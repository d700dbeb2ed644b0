//! History exports for auditors: `GET /environments/{id}/history.csv` and `.json` (the same
//! filters as the timeline page), and `GET /audit/environments.csv` (the auditors' view).
//! Streamed batch by batch, each its own short query, so memory stays flat and no connection is
//! held however long the download; at most [`EXPORTS_PER_PERSON`] at once per person;
//! authorized on the server (auditors and admins) and recorded in the audit trail.

use std::{net::SocketAddr, sync::Arc};

use app::api::{
    guard::{self, Services},
    history::{list_filter, HistoryQuery},
};
use axum::{
    body::{Body, Bytes},
    extract::{rejection::QueryRejection, ConnectInfo, Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use berth_db::{
    audit::{self, AuthEvent, AuthEventKind},
    events::Event,
    history::{self, Export},
    lists::{self, ListCursor},
};
use berth_domain::{Action, Actor};
use futures_util::stream;
use serde::Deserialize;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tower_sessions::Session;
use uuid::Uuid;

use crate::state::AppState;

/// Events read from the database per batch (and per chunk sent).
const BATCH: i64 = 1000;

/// Downloads one person may have running at once (pages and API together).
pub const EXPORTS_PER_PERSON: usize = 3;

/// The exports running now, per person: a download holds one of its person's slots until its
/// body is finished or dropped.
#[derive(Clone, Default)]
pub struct ExportSlots(
    Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Arc<tokio::sync::Semaphore>>>>,
);

impl ExportSlots {
    /// A slot for `user`, or 429 when they have [`EXPORTS_PER_PERSON`] downloads running.
    pub fn take(
        &self,
        user: Uuid,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, app::error::AppError> {
        let slots = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // People with no download running leave the map.
            map.retain(|_, s| s.available_permits() < EXPORTS_PER_PERSON);
            map.entry(user)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(EXPORTS_PER_PERSON)))
                .clone()
        };
        slots.try_acquire_owned().map_err(|_| {
            app::error::AppError::TooMany(format!(
                "You have {EXPORTS_PER_PERSON} downloads running; wait for one to finish."
            ))
        })
    }
}

/// `body`, holding `slot` until it is finished or dropped.
fn holding<S: futures_util::Stream + Send + 'static>(
    slot: tokio::sync::OwnedSemaphorePermit,
    body: S,
) -> impl futures_util::Stream<Item = S::Item> + Send + 'static {
    futures_util::StreamExt::map(body, move |item| {
        let _held = &slot;
        item
    })
}

/// Columns of the history CSV.
const CSV_COLUMNS: [&str; 6] = ["id", "at", "kind", "actor", "request_id", "details"];

#[derive(Clone, Copy)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The signed-in auditor or admin; 401 when nobody is signed in, 403 for other roles, and 403
/// when another site sent the browser here (see [`crate::middleware::csrf::download_allowed`]).
async fn auditor(
    services: &Services,
    session: &Session,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Actor, Response> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if !crate::middleware::csrf::download_allowed(site) {
        tracing::warn!(sec_fetch_site = site, "cross-site download refused");
        return Err((
            StatusCode::FORBIDDEN,
            "Downloads open from Berth's own pages or directly, not from another site.",
        )
            .into_response());
    }
    let user = guard::user_in_session(services, session)
        .await
        .map_err(super::refuse)?;
    guard::check(
        services,
        user.map(|u| u.actor()),
        Action::ExportHistory,
        Some(peer.ip().to_string()),
    )
    .await
    .map_err(super::refuse)
}

/// Records an export in the audit trail before anything is sent: an export that cannot be
/// recorded is not made (500).
async fn record_export(
    services: &Services,
    actor: &Actor,
    peer: SocketAddr,
    what: &str,
) -> Result<(), app::error::AppError> {
    let event = AuthEvent {
        user_id: Some(actor.user_id),
        subject: None,
        source_addr: Some(peer.ip().to_string()),
        reason: Some(what),
    };
    audit::record(&services.pool, AuthEventKind::HistoryExport, event)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot record a history export; not sending it");
            app::error::AppError::Internal
        })
}

/// A download of `body`, carrying the audit chain's head (`head`, see [`crate::audit`]) so
/// every export publishes it where the auditor keeps the file.
fn attachment(format: Format, filename: &str, head: Option<HeaderValue>, body: Body) -> Response {
    let mut res = Response::new(body);
    let headers = res.headers_mut();
    if let Some(head) = head {
        headers.insert(crate::audit::HEAD_HEADER, head);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // The file name is built from a slug ([a-z0-9-]) and a date: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn history_csv(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    history(state, peer, session, headers, id, query, Format::Csv).await
}

pub async fn history_json(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    history(state, peer, session, headers, id, query, Format::Json).await
}

async fn history(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    format: Format,
) -> Response {
    let services = &state.services;
    let actor = match auditor(services, &session, &headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    // Read only once the caller may download: an id that is not one is no environment.
    let Ok(id) = id.parse::<Uuid>() else {
        return super::refuse(app::error::AppError::NotFound);
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return refuse_filters(e),
    };
    history_for(services, &state.exports, &actor, peer, id, &query, format)
        .await
        .unwrap_or_else(super::refuse)
}

/// An environment's history as a download, for an `actor` allowed to export (the API's
/// bearer and the pages' session both end here). Refusals come back for the caller to word.
pub async fn history_for(
    services: &Services,
    slots: &ExportSlots,
    actor: &Actor,
    peer: SocketAddr,
    id: Uuid,
    query: &HistoryQuery,
    format: Format,
) -> Result<Response, app::error::AppError> {
    let filter = query.filter()?;
    let slot = slots.take(actor.user_id)?;
    let env = berth_db::requests::get_environment(&services.pool, id)
        .await?
        .ok_or(app::error::AppError::NotFound)?;
    let export = history::export(&services.pool, id, filter, BATCH).await?;
    let what = format!(
        "history.{} of {} ({id}) {}",
        format.ext(),
        env.slug,
        query.filter_query()
    );
    record_export(services, actor, peer, &what).await?;
    tracing::info!(user_id = %actor.user_id, environment_id = %id, format = format.ext(), "history export");
    let head = crate::audit::head_header(&services.pool, services.company.id).await;
    let today = OffsetDateTime::now_utc().date();
    let filename = format!("berth-{}-history-{today}.{}", env.slug, format.ext());
    Ok(attachment(
        format,
        &filename,
        head,
        Body::from_stream(holding(slot, event_stream(export, format))),
    ))
}

/// Writes batches as they are read: CSV with a header row, or one JSON array.
fn event_stream(
    export: Export,
    format: Format,
) -> impl futures_util::Stream<Item = Result<Bytes, berth_db::DbError>> + Send + 'static {
    // State: the export, whether this is the first chunk, whether the last one was sent.
    stream::try_unfold(
        (export, true, false),
        move |(mut export, first, done)| async move {
            if done {
                return Ok(None);
            }
            let batch = export.next_batch().await.inspect_err(|e| {
                tracing::error!(error = %e, "history export failed part-way");
            })?;
            // A short batch is the last one: close the document in the same chunk.
            let last = batch.is_none() || export.is_done();
            let mut out = Vec::new();
            match format {
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(&mut out);
                    if first {
                        write_csv(&mut w, CSV_COLUMNS)?;
                    }
                    for e in batch.iter().flatten() {
                        write_csv(&mut w, csv_record(e))?;
                    }
                    w.flush()
                        .map_err(|e| berth_db::DbError::Corrupt(format!("csv: {e}")))?;
                }
                Format::Json => {
                    if first {
                        out.push(b'[');
                    }
                    for (i, e) in batch.iter().flatten().enumerate() {
                        if !(first && i == 0) {
                            out.push(b',');
                        }
                        out.push(b'\n');
                        serde_json::to_writer(&mut out, &history::event_json(e))
                            .map_err(|e| berth_db::DbError::Corrupt(e.to_string()))?;
                    }
                    if last {
                        out.extend_from_slice(b"\n]\n");
                    }
                }
            }
            Ok(Some((Bytes::from(out), (export, false, last))))
        },
    )
}

fn write_csv<const N: usize, T: AsRef<[u8]>>(
    w: &mut csv::Writer<&mut Vec<u8>>,
    record: [T; N],
) -> Result<(), berth_db::DbError> {
    w.write_record(record)
        .map_err(|e| berth_db::DbError::Corrupt(format!("csv: {e}")))
}

fn csv_record(e: &Event) -> [String; 6] {
    [
        e.id.to_string(),
        e.created_at.format(&Rfc3339).unwrap_or_default(),
        e.kind.clone(),
        spreadsheet_safe(&e.actor_label().unwrap_or_default()),
        e.request_id.map(|r| r.to_string()).unwrap_or_default(),
        e.details.to_string(),
    ]
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading
/// apostrophe (OWASP CSV injection advice); names come from the identity provider.
fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    status: String,
    q: String,
}

/// A download's filters that do not parse (a parameter given twice): 422 in words for people;
/// the deserializer's own text is logged, not sent.
fn refuse_filters(e: QueryRejection) -> Response {
    tracing::debug!(error = %e.body_text(), "download filters refused");
    super::refuse(app::error::AppError::Invalid(
        "The address's filters could not be read: give each of them once.".into(),
    ))
}

/// GET /audit/environments.csv: the auditors' view, every matching environment.
pub async fn audit_csv(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let services = state.services.clone();
    let actor = match auditor(&services, &session, &headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return refuse_filters(e),
    };
    let filter = match list_filter(&query.status, &query.q) {
        Ok(f) => f,
        Err(e) => return super::refuse(e),
    };
    let slot = match state.exports.take(actor.user_id) {
        Ok(s) => s,
        Err(e) => return super::refuse(e),
    };
    // The search as the filter took it (no control characters: a NUL cannot be stored).
    let what = format!(
        "audit/environments.csv status={} q={}",
        query.status,
        filter.text.as_deref().unwrap_or_default()
    );
    if let Err(e) = record_export(&services, &actor, peer, &what).await {
        return super::refuse(e);
    }
    let company = services.company.id;
    let pool = services.pool.clone();
    const PAGE: i64 = 500;
    // Page after page by keyset cursor: each batch costs the same however deep the export.
    let body = stream::try_unfold(Some(ListCursor::First), move |cursor| {
        let (pool, filter) = (pool.clone(), filter.clone());
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let result = lists::latest_states(&pool, company, &filter, cursor, PAGE).await?;
            let (page, next) = (result.page.rows, result.page.next);
            let mut out = Vec::new();
            let mut w = csv::Writer::from_writer(&mut out);
            if cursor == ListCursor::First {
                write_csv(
                    &mut w,
                    [
                        "id",
                        "name",
                        "slug",
                        "status",
                        "blueprint",
                        "size",
                        "updated_at",
                        "request_kind",
                        "request_status",
                        "requested_by",
                        "decided_by",
                        "run_status",
                        "blueprint_version",
                        "last_event_kind",
                        "last_event_at",
                        "event_count",
                    ],
                )?;
            }
            let stamp = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
            for r in page {
                write_csv(
                    &mut w,
                    [
                        r.id.to_string(),
                        spreadsheet_safe(&r.name),
                        r.slug,
                        r.status.to_string(),
                        r.blueprint,
                        r.size,
                        stamp(r.updated_at),
                        r.request_kind
                            .map(|k| k.as_str().to_owned())
                            .unwrap_or_default(),
                        r.request_status.map(|s| s.to_string()).unwrap_or_default(),
                        spreadsheet_safe(&r.requested_by.unwrap_or_default()),
                        spreadsheet_safe(&r.decided_by.unwrap_or_default()),
                        r.run_status.map(|s| s.to_string()).unwrap_or_default(),
                        r.blueprint_version.unwrap_or_default(),
                        r.last_event_kind.unwrap_or_default(),
                        r.last_event_at.map(stamp).unwrap_or_default(),
                        r.event_count.to_string(),
                    ],
                )?;
            }
            w.flush()
                .map_err(|e| berth_db::DbError::Corrupt(format!("csv: {e}")))?;
            drop(w);
            Ok::<_, berth_db::DbError>(Some((Bytes::from(out), next)))
        }
    });
    let head = crate::audit::head_header(&services.pool, services.company.id).await;
    let today = OffsetDateTime::now_utc().date();
    attachment(
        Format::Csv,
        &format!("berth-environments-{today}.csv"),
        head,
        Body::from_stream(holding(slot, body)),
    )
}
