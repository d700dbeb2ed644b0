//! The auditors' history: an environment's events filtered by type and time, read a page at a
//! time with keyset pagination (by event id), and exported in short batches up to the newest
//! event at the start. The auditors' view of every environment's latest state is a list: see
//! [`crate::lists`].
//!
//! Order is oldest first everywhere: a timeline reads as a story (request → decision → run →
//! steps), and exports line up with the screen. The "latest" cursor jumps to the newest page
//! for people who want the most recent events first.
//!
//! Events are append-only (a trigger refuses update, delete and truncate), so a page once read
//! never changes; a keyset cursor stays valid however many events are appended after it.

use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{events::Event, DbError};

/// Named groups of event kinds offered by the type filter.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("requests", &["request."]),
    ("runs", &["run.", "decommissioned"]),
    ("steps", &["step."]),
    ("plans", &["plan.", "run.needs_reapproval"]),
    // Everything that went wrong, including transient failures that were retried.
    (
        "errors",
        &[
            "request.failed",
            "plan.failed",
            "run.failed",
            "step.failed",
            "step.retrying",
            "step.lease_expired",
        ],
    ),
];

/// Which events to read. An empty `kinds` means every kind; an entry ending in `.` matches
/// every kind with that prefix (`run.`), any other entry matches exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub kinds: Vec<String>,
    /// Inclusive lower bound on the event time.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on the event time.
    pub to: Option<OffsetDateTime>,
}

impl HistoryFilter {
    /// The kinds selected by a type filter: a group name from [`GROUPS`], a kind prefix ending
    /// in `.`, or one exact kind. Empty selects everything.
    pub fn kinds_for_type(selection: &str) -> Result<Vec<String>, String> {
        let selection = selection.trim();
        if selection.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((_, kinds)) = GROUPS.iter().find(|(name, _)| *name == selection) {
            return Ok(kinds.iter().map(|k| (*k).to_owned()).collect());
        }
        let valid = selection.len() <= 64
            && selection.starts_with(|c: char| c.is_ascii_lowercase())
            && selection
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
        if valid {
            Ok(vec![selection.to_owned()])
        } else {
            Err(format!("'{selection}' is not an event type."))
        }
    }

    /// Exact kinds and LIKE patterns (prefixes with `%` appended, `_` escaped) for the query.
    fn split(&self) -> (Vec<String>, Vec<String>) {
        let mut exact = Vec::new();
        let mut patterns = Vec::new();
        for k in &self.kinds {
            if k.ends_with('.') {
                patterns.push(format!("{}%", k.replace('\\', "\\\\").replace('_', "\\_")));
            } else {
                exact.push(k.clone());
            }
        }
        (exact, patterns)
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cursor {
    /// The oldest events.
    #[default]
    First,
    /// The events right after this id (the "next" link).
    After(i64),
    /// The events right before this id (the "previous" link).
    Before(i64),
    /// The newest events.
    Latest,
}

/// One page of events, oldest first, with the cursors of its neighbours (None at either end).
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<Event>,
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
}

/// Largest page a caller may ask for.
pub const MAX_PAGE: i64 = 500;

/// Whether an environment exists (timelines of unknown ids are a 404, not an empty page).
pub async fn environment_exists(pool: &PgPool, environment_id: Uuid) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM environments WHERE id = $1) AS "exists!""#,
        environment_id
    )
    .fetch_one(pool)
    .await?)
}

/// The id of the environment's latest event (`None` before its first): it moves with every
/// recorded change, so a live view can tell that something happened even where nothing it
/// summarises did (a plan computed, a request decided).
pub async fn latest_event_id(pool: &PgPool, environment_id: Uuid) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        "SELECT max(id) FROM events WHERE environment_id = $1",
        environment_id
    )
    .fetch_one(pool)
    .await?)
}

/// One page of an environment's events matching `filter`, oldest first.
///
/// A transaction that commits late with a smaller id than an event already shown can be missed
/// by a "next" cursor taken before it committed; event-writing transactions are short, and a
/// reload shows it. Exports read one snapshot and do not have this gap.
pub async fn page(
    pool: &PgPool,
    environment_id: Uuid,
    filter: &HistoryFilter,
    cursor: Cursor,
    limit: i64,
) -> Result<Page, DbError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (exact, patterns) = filter.split();
    let mut conn = pool.acquire().await?;
    // One more row than asked tells whether there is a page beyond.
    let (events, more) = match cursor {
        Cursor::First | Cursor::After(_) => {
            let after = match cursor {
                Cursor::After(id) => id,
                _ => 0,
            };
            let mut rows = select_asc(
                &mut conn,
                environment_id,
                &exact,
                &patterns,
                filter,
                after,
                limit + 1,
            )
            .await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            (rows, more)
        }
        Cursor::Before(_) | Cursor::Latest => {
            let before = match cursor {
                Cursor::Before(id) => id,
                _ => i64::MAX,
            };
            let mut rows = select_desc(
                &mut conn,
                environment_id,
                &exact,
                &patterns,
                filter,
                before,
                limit + 1,
            )
            .await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            rows.reverse();
            (rows, more)
        }
    };
    let (first, last) = match (events.first(), events.last()) {
        (Some(f), Some(l)) => (f.id, l.id),
        _ => {
            // An empty page: only a way back to the start is useful.
            let previous = (!matches!(cursor, Cursor::First)).then_some(Cursor::First);
            return Ok(Page {
                events,
                next: None,
                previous,
            });
        }
    };
    let (next, previous) = match cursor {
        Cursor::First => (more.then_some(Cursor::After(last)), None),
        Cursor::After(_) => (
            more.then_some(Cursor::After(last)),
            exists_before(&mut conn, environment_id, &exact, &patterns, filter, first)
                .await?
                .then_some(Cursor::Before(first)),
        ),
        Cursor::Before(_) | Cursor::Latest => (
            exists_after(&mut conn, environment_id, &exact, &patterns, filter, last)
                .await?
                .then_some(Cursor::After(last)),
            more.then_some(Cursor::Before(first)),
        ),
    };
    Ok(Page {
        events,
        next,
        previous,
    })
}

async fn select_asc(
    conn: &mut sqlx::PgConnection,
    environment_id: Uuid,
    exact: &[String],
    patterns: &[String],
    filter: &HistoryFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>, DbError> {
    Ok(sqlx::query_as!(
        Event,
        r#"SELECT e.id, e.environment_id, e.request_id, e.actor_id,
                  u.display_name AS "actor_name?", t.name AS "token_name?", e.kind, e.details,
                  e.created_at
           FROM events e LEFT JOIN users u ON u.id = e.actor_id
                LEFT JOIN api_tokens t ON t.id = e.token_id
           WHERE e.environment_id = $1 AND e.id > $2
             AND (cardinality($3::text[]) + cardinality($4::text[]) = 0
                  OR e.kind = ANY($3) OR e.kind LIKE ANY($4))
             AND ($5::timestamptz IS NULL OR e.created_at >= $5)
             AND ($6::timestamptz IS NULL OR e.created_at < $6)
           ORDER BY e.id
           LIMIT $7"#,
        environment_id,
        after,
        exact,
        patterns,
        filter.from,
        filter.to,
        limit
    )
    .fetch_all(conn)
    .await?)
}

async fn select_desc(
    conn: &mut sqlx::PgConnection,
    environment_id: Uuid,
    exact: &[String],
    patterns: &[String],
    filter: &HistoryFilter,
    before: i64,
    limit: i64,
) -> Result<Vec<Event>, DbError> {
    Ok(sqlx::query_as!(
        Event,
        r#"SELECT e.id, e.environment_id, e.request_id, e.actor_id,
                  u.display_name AS "actor_name?", t.name AS "token_name?", e.kind, e.details,
                  e.created_at
           FROM events e LEFT JOIN users u ON u.id = e.actor_id
                LEFT JOIN api_tokens t ON t.id = e.token_id
           WHERE e.environment_id = $1 AND e.id < $2
             AND (cardinality($3::text[]) + cardinality($4::text[]) = 0
                  OR e.kind = ANY($3) OR e.kind LIKE ANY($4))
             AND ($5::timestamptz IS NULL OR e.created_at >= $5)
             AND ($6::timestamptz IS NULL OR e.created_at < $6)
           ORDER BY e.id DESC
           LIMIT $7"#,
        environment_id,
        before,
        exact,
        patterns,
        filter.from,
        filter.to,
        limit
    )
    .fetch_all(conn)
    .await?)
}

async fn exists_before(
    conn: &mut sqlx::PgConnection,
    environment_id: Uuid,
    exact: &[String],
    patterns: &[String],
    filter: &HistoryFilter,
    id: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM events e
             WHERE e.environment_id = $1 AND e.id < $2
               AND (cardinality($3::text[]) + cardinality($4::text[]) = 0
                    OR e.kind = ANY($3) OR e.kind LIKE ANY($4))
               AND ($5::timestamptz IS NULL OR e.created_at >= $5)
               AND ($6::timestamptz IS NULL OR e.created_at < $6)) AS "exists!""#,
        environment_id,
        id,
        exact,
        patterns,
        filter.from,
        filter.to
    )
    .fetch_one(conn)
    .await?)
}

async fn exists_after(
    conn: &mut sqlx::PgConnection,
    environment_id: Uuid,
    exact: &[String],
    patterns: &[String],
    filter: &HistoryFilter,
    id: i64,
) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM events e
             WHERE e.environment_id = $1 AND e.id > $2
               AND (cardinality($3::text[]) + cardinality($4::text[]) = 0
                    OR e.kind = ANY($3) OR e.kind LIKE ANY($4))
               AND ($5::timestamptz IS NULL OR e.created_at >= $5)
               AND ($6::timestamptz IS NULL OR e.created_at < $6)) AS "exists!""#,
        environment_id,
        id,
        exact,
        patterns,
        filter.from,
        filter.to
    )
    .fetch_one(conn)
    .await?)
}

/// Every event of an environment matching a filter, oldest first, in batches. Each batch is
/// its own short query on a connection taken from the pool and given back at once, so a slow
/// download holds neither a transaction nor a pooled connection. The export is fixed at the
/// events that existed when it started (events are append-only: everything up to the newest id
/// then), so it is consistent however long the client takes, and memory stays at one batch.
pub struct Export {
    pool: PgPool,
    environment_id: Uuid,
    exact: Vec<String>,
    patterns: Vec<String>,
    filter: HistoryFilter,
    after: i64,
    /// The newest event of the environment when the export started.
    upto: i64,
    batch: i64,
    done: bool,
}

/// Starts an export; read it with [`Export::next_batch`].
pub async fn export(
    pool: &PgPool,
    environment_id: Uuid,
    filter: HistoryFilter,
    batch: i64,
) -> Result<Export, DbError> {
    let upto = sqlx::query_scalar!(
        r#"SELECT coalesce(max(id), 0) AS "upto!" FROM events WHERE environment_id = $1"#,
        environment_id
    )
    .fetch_one(pool)
    .await?;
    let (exact, patterns) = filter.split();
    Ok(Export {
        pool: pool.clone(),
        environment_id,
        exact,
        patterns,
        filter,
        after: 0,
        upto,
        batch: batch.clamp(1, 10_000),
        done: upto == 0,
    })
}

impl Export {
    /// True once every matching event has been returned (a short batch was read).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next batch, or `None` when every matching event has been read.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Event>>, DbError> {
        if self.done {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        let mut rows = select_asc(
            &mut conn,
            self.environment_id,
            &self.exact,
            &self.patterns,
            &self.filter,
            self.after,
            self.batch,
        )
        .await?;
        drop(conn);
        let read = rows.len() as i64;
        rows.retain(|e| e.id <= self.upto);
        if read < self.batch || (rows.len() as i64) < read {
            self.done = true;
        }
        match rows.last() {
            Some(last) => {
                self.after = last.id;
                Ok(Some(rows))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

/// The JSON of an event as exports write it (one object per event).
pub fn event_json(e: &Event) -> Value {
    serde_json::json!({
        "id": e.id,
        "environment_id": e.environment_id,
        "at": e
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "kind": e.kind,
        "actor_id": e.actor_id,
        "actor": e.actor_name,
        "token": e.token_name,
        "request_id": e.request_id,
        "details": e.details,
    })
}
