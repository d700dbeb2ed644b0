//! The auditors' history: a page of an environment's timeline, and the auditors' view of every
//! environment's latest state. Exports are plain axum routes (server/src/routes/export.rs) that
//! share [`HistoryQuery`] with the page.

use berth_domain::{RequestStatus, RunStatus};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    paging::{query_pairs, query_string, ListLink},
    Stamp,
};
use crate::error::AppError;

/// Events on one page of a timeline.
pub const PAGE_SIZE: i64 = 50;
/// Environments on one page of the auditors' view.
pub const AUDIT_PAGE_SIZE: i64 = 50;

/// The timeline's query parameters, as the page's URL and the export URLs carry them. Every
/// field is text so a hand-edited URL gets a clear error instead of a decoding failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    /// A group (`requests`, `runs`, `steps`, `errors`), a prefix ending in `.`, or one kind.
    pub kind: String,
    /// `YYYY-MM-DD` (start of that day, UTC) or an RFC 3339 time; inclusive.
    pub from: String,
    /// `YYYY-MM-DD` (the whole day, UTC, is included) or an RFC 3339 time (exclusive).
    pub to: String,
    /// Events after this id (the "later" link).
    pub after: String,
    /// Events before this id (the "earlier" link).
    pub before: String,
    /// `latest` for the newest page.
    pub page: String,
}

impl HistoryQuery {
    /// The filter part (kind, from, to) as a URL query string, without cursor.
    pub fn filter_query(&self) -> String {
        query_pairs([
            ("kind", self.kind.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ])
    }

    /// The URL query for this filter at a cursor.
    pub fn with_cursor(&self, cursor: PageCursor) -> String {
        let id;
        let cursor = match cursor {
            PageCursor::First => ("", ""),
            PageCursor::After(after) => {
                id = after.to_string();
                ("after", id.as_str())
            }
            PageCursor::Before(before) => {
                id = before.to_string();
                ("before", id.as_str())
            }
            PageCursor::Latest => ("page", "latest"),
        };
        query_string([
            ("kind", self.kind.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            cursor,
        ])
    }
}

/// Where a page link points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageCursor {
    First,
    After(i64),
    Before(i64),
    Latest,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use berth_db::history::{Cursor, HistoryFilter};
    use time::{format_description::well_known::Rfc3339, macros::format_description};
    use time::{Date, Duration, OffsetDateTime};

    impl From<Cursor> for PageCursor {
        fn from(c: Cursor) -> Self {
            match c {
                Cursor::First => PageCursor::First,
                Cursor::After(id) => PageCursor::After(id),
                Cursor::Before(id) => PageCursor::Before(id),
                Cursor::Latest => PageCursor::Latest,
            }
        }
    }

    /// A `from`/`to` bound: a day (its start, or for `to` the start of the next day) or an
    /// RFC 3339 time.
    fn bound(field: &str, raw: &str, end_of_day: bool) -> Result<Option<OffsetDateTime>, AppError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        if let Ok(day) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
            let start = day.midnight().assume_utc();
            if !end_of_day {
                return Ok(Some(start));
            }
            // The day after the last one `time` knows does not exist: a clear refusal, no panic.
            return start
                .checked_add(Duration::days(1))
                .map(Some)
                .ok_or_else(|| {
                    AppError::Invalid(format!("'{field}' is past the last date Berth knows."))
                });
        }
        OffsetDateTime::parse(raw, &Rfc3339).map(Some).map_err(|_| {
            AppError::Invalid(format!(
                "'{field}' must be a date (YYYY-MM-DD) or an RFC 3339 time."
            ))
        })
    }

    impl HistoryQuery {
        pub fn filter(&self) -> Result<HistoryFilter, AppError> {
            let kinds = HistoryFilter::kinds_for_type(&self.kind).map_err(AppError::Invalid)?;
            let from = bound("from", &self.from, false)?;
            let to = bound("to", &self.to, true)?;
            if let (Some(f), Some(t)) = (from, to) {
                if f >= t {
                    return Err(AppError::Invalid("'from' must be before 'to'.".into()));
                }
            }
            Ok(HistoryFilter { kinds, from, to })
        }

        pub fn cursor(&self) -> Result<Cursor, AppError> {
            let id = |field: &str, v: &str| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id >= 0)
                    .ok_or_else(|| AppError::Invalid(format!("'{field}' must be an event id.")))
            };
            match (
                self.after.as_str(),
                self.before.as_str(),
                self.page.as_str(),
            ) {
                ("", "", "") => Ok(Cursor::First),
                ("", "", "latest") => Ok(Cursor::Latest),
                (a, "", "") => Ok(Cursor::After(id("after", a)?)),
                ("", b, "") => Ok(Cursor::Before(id("before", b)?)),
                _ => Err(AppError::Invalid(
                    "Give at most one of 'after', 'before' and 'page=latest'.".into(),
                )),
            }
        }
    }
}

/// One event as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub id: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub at: Stamp,
    pub request_id: Option<Uuid>,
    /// The plan the event is about (a plan event, an approval, a run's enqueueing).
    pub plan_id: Option<Uuid>,
    /// A one-line human summary of the event's details.
    pub summary: Option<String>,
    /// The stored details, exactly, as indented JSON.
    pub details: String,
}

/// A page of an environment's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelinePage {
    pub events: Vec<EventView>,
    pub next: Option<PageCursor>,
    pub previous: Option<PageCursor>,
    /// The viewer may export (auditors and admins); the export routes check again.
    pub can_export: bool,
}

/// A page of an environment's events, oldest first, filtered by type and time.
#[server(endpoint = "history_page", output = super::codec::JsonOut)]
pub async fn history_page(id: Uuid, query: HistoryQuery) -> Result<TimelinePage, AppError> {
    use super::guard;
    use berth_domain::{policy::authorize, Action};
    guard::respond(async move {
        // Services first: see guard::require on context across awaits.
        let s = guard::services()?;
        let actor = guard::require(Action::ReadEnvironments).await?;
        let filter = query.filter()?;
        let cursor = query.cursor()?;
        if !berth_db::history::environment_exists(&s.pool, id).await? {
            return Err(AppError::NotFound);
        }
        let page = berth_db::history::page(&s.pool, id, &filter, cursor, PAGE_SIZE).await?;
        Ok(TimelinePage {
            events: page.events.into_iter().map(event_view).collect(),
            next: page.next.map(Into::into),
            previous: page.previous.map(Into::into),
            can_export: authorize(Some(&actor), Action::ExportHistory).is_ok(),
        })
    })
    .await
}

#[cfg(feature = "ssr")]
fn event_view(e: berth_db::events::Event) -> EventView {
    let actor = e.actor_label();
    let summary =
        super::environments::summarize(&e.kind, &e.details).or_else(|| engine_summary(&e.details));
    EventView {
        id: e.id,
        summary,
        details: serde_json::to_string_pretty(&e.details).unwrap_or_default(),
        kind: e.kind,
        actor,
        at: e.created_at.into(),
        request_id: e.request_id,
        plan_id: e
            .details
            .get("plan_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok()),
    }
}

/// "step chart:influxdb, attempt 2: <error>" for the engine's run and step events.
#[cfg(feature = "ssr")]
fn engine_summary(details: &serde_json::Value) -> Option<String> {
    let text = |k: &str| details.get(k).and_then(|v| v.as_str());
    let mut parts = Vec::new();
    if let Some(step) = text("step") {
        parts.push(format!("step {step}"));
    }
    if let Some(attempt) = details.get("attempt").and_then(|v| v.as_i64()) {
        parts.push(format!("attempt {attempt}"));
    }
    if let Some(v) = text("blueprint_version") {
        parts.push(format!("blueprint version {v}"));
    }
    let mut line = parts.join(", ");
    for key in ["error", "reason"] {
        if let Some(t) = text(key) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(t);
        }
    }
    (!line.is_empty()).then_some(line)
}

/// One environment in the auditors' view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: berth_domain::EnvironmentStatus,
    pub blueprint: String,
    pub size: String,
    pub updated_at: Stamp,
    pub request_kind: Option<String>,
    pub request_status: Option<RequestStatus>,
    pub requested_by: Option<String>,
    pub decided_by: Option<String>,
    pub run_status: Option<RunStatus>,
    pub blueprint_version: Option<String>,
    pub last_event_kind: Option<String>,
    pub last_event_at: Option<Stamp>,
    pub event_count: i64,
}

/// A page of the auditors' view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    pub rows: Vec<AuditRow>,
    /// Environments matching the filter, on every page.
    pub total: i64,
    pub next: Option<ListLink>,
    pub previous: Option<ListLink>,
}

/// Every environment (rejected and withdrawn ones too) with its latest state; auditors and
/// admins only. `status` is empty or an environment status; `after`/`before` are the cursors
/// of the previous/next links (both empty: the first page).
#[server(endpoint = "audit_environments", output = super::codec::JsonOut)]
pub async fn audit_environments(
    status: String,
    q: String,
    #[server(default)] after: String,
    #[server(default)] before: String,
) -> Result<AuditList, AppError> {
    use super::{guard, paging};
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::ExportHistory).await?;
        let filter = list_filter(&status, &q)?;
        let cursor = paging::list_cursor(&after, &before)?;
        let result =
            berth_db::lists::latest_states(&s.pool, s.company.id, &filter, cursor, AUDIT_PAGE_SIZE)
                .await?;
        let rows = result.page.rows.into_iter().map(audit_row).collect();
        Ok(AuditList {
            rows,
            total: result.total,
            next: result.page.next.map(paging::list_link),
            previous: result.page.previous.map(paging::list_link),
        })
    })
    .await
}

/// A list's filter from its query parameters (the environment list's and the auditors' view):
/// a status (empty: any) and a search text.
#[cfg(feature = "ssr")]
pub fn list_filter(status: &str, q: &str) -> Result<berth_db::lists::ListFilter, AppError> {
    let status = status.trim();
    let status = if status.is_empty() {
        None
    } else {
        Some(
            status
                .parse::<berth_domain::EnvironmentStatus>()
                .map_err(AppError::Invalid)?,
        )
    };
    Ok(list_filter_of(status, q))
}

/// As [`list_filter`], for callers whose status is already parsed (the API): the search text
/// trimmed and cut to 100 characters.
#[cfg(feature = "ssr")]
pub fn list_filter_of(
    status: Option<berth_domain::EnvironmentStatus>,
    q: &str,
) -> berth_db::lists::ListFilter {
    let text = q.trim().chars().take(100).collect::<String>();
    berth_db::lists::ListFilter {
        status,
        text: (!text.is_empty()).then_some(text),
    }
}

#[cfg(feature = "ssr")]
fn audit_row(r: berth_db::lists::LatestState) -> AuditRow {
    AuditRow {
        id: r.id,
        status: r.status,
        request_status: r.request_status,
        name: r.name,
        slug: r.slug,
        blueprint: r.blueprint,
        size: r.size,
        updated_at: r.updated_at.into(),
        request_kind: r.request_kind.map(|k| k.as_str().to_owned()),
        requested_by: r.requested_by,
        decided_by: r.decided_by,
        run_status: r.run_status,
        blueprint_version: r.blueprint_version,
        last_event_kind: r.last_event_kind,
        last_event_at: r.last_event_at.map(Into::into),
        event_count: r.event_count,
    }
}
