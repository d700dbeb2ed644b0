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
    use time::{Date, Duration, OffsetDateTime, UtcOffset};

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
    /// RFC 3339 time, as a UTC instant.
    fn bound(field: &str, raw: &str, end_of_day: bool) -> Result<Option<OffsetDateTime>, AppError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let outside = || AppError::Invalid(format!("'{field}' is past the last date Berth knows."));
        if let Ok(day) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
            let start = day.midnight().assume_utc();
            if !end_of_day {
                return Ok(Some(start));
            }
            // The day after the last one `time` knows does not exist: a clear refusal, no panic.
            return start
                .checked_add(Duration::days(1))
                .map(Some)
                .ok_or_else(outside);
        }
        let time = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            AppError::Invalid(format!(
                "'{field}' must be a date (YYYY-MM-DD) or an RFC 3339 time."
            ))
        })?;
        // In UTC, as the database takes it: `9999-12-31T23:59:59-23:59` is a time whose UTC
        // instant is past the last date (its driver's conversion would panic).
        time.checked_to_offset(UtcOffset::UTC)
            .map(Some)
            .ok_or_else(|| {
                AppError::Invalid(format!(
                    "'{field}' is outside the dates Berth knows (years -9999 to 9999, UTC)."
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
    // No name holds a control character, and PostgreSQL refuses text with a NUL in it.
    let text = q
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>();
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

/// The query-string parsers of the timeline, the environment list and the auditors' view, fed
/// arbitrary text: a refusal is always [`AppError::Invalid`] (a 422 with its message, never a
/// panic or a 500), and what the pages write into their links parses back to the same query.
#[cfg(all(test, feature = "ssr"))]
mod query_tests {
    use super::*;
    use crate::api::paging::{list_cursor, list_link};
    use berth_db::lists::{ListCursor, ListKey};
    use proptest::prelude::*;

    /// Text as a hand-edited URL may carry it.
    fn input() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
            "-?[0-9]{1,40}",
            "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
            "(9999|0000|-9999|\\+99999)-(01|12|13|00)-(01|31|32)",
            // The calendar's last days: the day after is out of range.
            "9999-12-(2[0-9]|3[01])(T23:59:59(\\.9{1,9})?(Z|-23:59))?",
            "[a-z_.]{0,70}",
            "-?[0-9]{1,25}\\.[0-9a-f-]{0,40}",
            Just("latest".to_owned()),
            Just(String::new()),
        ]
    }

    /// Parts of Rust's `Debug` output that must never reach a person.
    const DEBUG_MARKS: &[&str] = &["Err(", "Ok(", "Some(", "None", "\\u{", "Error {", "kind:"];

    /// An [`AppError::Invalid`] with a message people can read (what they typed aside).
    fn assert_refused(err: AppError, inputs: &[&str]) -> Result<(), TestCaseError> {
        let AppError::Invalid(message) = &err else {
            return Err(TestCaseError::fail(format!(
                "{inputs:?} refused as {err:?}, not as invalid input"
            )));
        };
        prop_assert!(!message.trim().is_empty());
        // What they typed, longest first, stood in for by a character no mark contains.
        let mut typed: Vec<&str> = inputs.iter().flat_map(|i| [*i, i.trim()]).collect();
        typed.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let mut own = message.clone();
        for t in typed.into_iter().filter(|t| !t.is_empty()) {
            own = own.replace(t, "\u{0}");
        }
        for mark in DEBUG_MARKS {
            prop_assert!(!own.contains(mark), "{message:?} shows {mark:?}");
        }
        Ok(())
    }

    /// The query as axum's `Query` reads what [`HistoryQuery::with_cursor`] wrote.
    fn decode(query: &str) -> HistoryQuery {
        let mut q = HistoryQuery::default();
        for pair in query
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap();
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .unwrap()
                .into_owned();
            match k {
                "kind" => q.kind = v,
                "from" => q.from = v,
                "to" => q.to = v,
                "after" => q.after = v,
                "before" => q.before = v,
                "page" => q.page = v,
                other => panic!("unexpected parameter {other}"),
            }
        }
        q
    }

    #[test]
    fn a_date_past_the_calendar_is_refused_not_a_panic() {
        let query = HistoryQuery {
            to: "9999-12-31".into(),
            ..Default::default()
        };
        assert!(matches!(
            query.filter(),
            Err(AppError::Invalid(m)) if m == "'to' is past the last date Berth knows."
        ));
        let query = HistoryQuery {
            from: "9999-12-31".into(),
            ..Default::default()
        };
        assert!(query.filter().unwrap().from.is_some());
        // A time whose UTC instant is past the calendar's end (or before its start): refused,
        // where it used to reach the database driver, which panics converting it to UTC.
        // In range, a time is taken as its UTC instant.
        let query = HistoryQuery {
            to: "2026-12-01T01:00:00+02:00".into(),
            ..Default::default()
        };
        assert_eq!(
            query.filter().unwrap().to,
            Some(time::macros::datetime!(2026-11-30 23:00 UTC))
        );
        for (field, raw) in [
            ("to", "9999-12-31T23:59:59-23:59"),
            ("from", "9999-12-31T23:00:00-01:00"),
            ("from", "-9999-01-01T00:00:00+00:01"),
        ] {
            let mut query = HistoryQuery::default();
            match field {
                "to" => query.to = raw.into(),
                _ => query.from = raw.into(),
            }
            assert!(
                matches!(query.filter(), Err(AppError::Invalid(ref m)) if m.starts_with(&format!("'{field}'"))),
                "{field}={raw}: {:?}",
                query.filter()
            );
        }
    }

    proptest! {
        #[test]
        fn timeline_queries(kind in input(), from in input(), to in input(), after in input(), before in input(), page in input()) {
            let query = HistoryQuery { kind, from, to, after, before, page };
            let inputs = [
                query.kind.as_str(), query.from.as_str(), query.to.as_str(),
                query.after.as_str(), query.before.as_str(), query.page.as_str(),
            ];
            // Each bound alone too: combined, one refused field hides what the other allows.
            let alone = [
                HistoryQuery { from: query.from.clone(), ..Default::default() },
                HistoryQuery { to: query.to.clone(), ..Default::default() },
            ];
            for q in alone.iter().chain([&query]) {
                match q.filter() {
                    // Every accepted bound is an instant the database can take: its driver
                    // converts it to UTC and panics when that leaves the calendar.
                    Ok(filter) => {
                        for bound in [filter.from, filter.to].into_iter().flatten() {
                            prop_assert!(
                                bound.checked_to_offset(time::UtcOffset::UTC).is_some(),
                                "{bound} from {inputs:?} has no UTC time"
                            );
                        }
                    }
                    Err(e) => assert_refused(e, &inputs)?,
                }
            }
            match query.cursor() {
                // The page's own links carry the same filter and cursor.
                Ok(cursor) => {
                    let link = query.with_cursor(cursor.into());
                    let back = decode(&link);
                    prop_assert_eq!(back.cursor().ok(), Some(cursor));
                    prop_assert_eq!(back.filter_query(), query.filter_query());
                    prop_assert_eq!(
                        back.filter().map_err(|e| e.to_string()),
                        query.filter().map_err(|e| e.to_string())
                    );
                }
                Err(e) => assert_refused(e, &inputs)?,
            }
        }

        #[test]
        fn list_queries(status in input(), q in input(), after in input(), before in input()) {
            match list_filter(&status, &q) {
                Ok(filter) => {
                    prop_assert!(filter.text.as_ref().is_none_or(|t| t.chars().count() <= 100));
                }
                Err(e) => assert_refused(e, &[&status, &q])?,
            }
            if let Err(e) = list_cursor(&after, &before) {
                assert_refused(e, &[&after, &before])?;
            }
        }

        #[test]
        fn list_positions_survive_the_url(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999, id in any::<u128>()) {
            let key = ListKey {
                updated_at: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap(),
                id: uuid::Uuid::from_u128(id),
            };
            let link = list_link(ListCursor::After(key));
            let (_, token) = link.param().unwrap();
            prop_assert_eq!(list_cursor(token, "").ok(), Some(ListCursor::After(key)));
            prop_assert_eq!(list_cursor("", token).ok(), Some(ListCursor::Before(key)));
        }
    }
}
