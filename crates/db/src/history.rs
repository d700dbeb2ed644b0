//! The auditors' history: an environment's events filtered by type and time, read a page at a
//! time with keyset pagination (by event id), exported in batches from one snapshot, and the
//! latest state of every environment for the auditors' view.
//!
//! Order is oldest first everywhere: a timeline reads as a story (request → decision → run →
//! steps), and exports line up with the screen. The "latest" cursor jumps to the newest page
//! for people who want the most recent events first.
//!
//! Events are append-only (a trigger refuses update, delete and truncate), so a page once read
//! never changes; a keyset cursor stays valid however many events are appended after it.

use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{events::Event, DbError};

/// Named groups of event kinds offered by the type filter.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("requests", &["request."]),
    ("runs", &["run."]),
    ("steps", &["step."]),
    // Everything that went wrong, including transient failures that were retried.
    (
        "errors",
        &[
            "request.failed",
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
                  u.display_name AS "actor_name?", e.kind, e.details, e.created_at
           FROM events e LEFT JOIN users u ON u.id = e.actor_id
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
                  u.display_name AS "actor_name?", e.kind, e.details, e.created_at
           FROM events e LEFT JOIN users u ON u.id = e.actor_id
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

/// Every event of an environment matching a filter, oldest first, in batches read from one
/// snapshot (a read-only repeatable-read transaction), so an export is consistent however long
/// the client takes and memory stays at one batch.
pub struct Export {
    tx: Transaction<'static, Postgres>,
    environment_id: Uuid,
    exact: Vec<String>,
    patterns: Vec<String>,
    filter: HistoryFilter,
    after: i64,
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
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (exact, patterns) = filter.split();
    Ok(Export {
        tx,
        environment_id,
        exact,
        patterns,
        filter,
        after: 0,
        batch: batch.clamp(1, 10_000),
        done: false,
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
        let rows = select_asc(
            &mut self.tx,
            self.environment_id,
            &self.exact,
            &self.patterns,
            &self.filter,
            self.after,
            self.batch,
        )
        .await?;
        if (rows.len() as i64) < self.batch {
            self.done = true;
        }
        match rows.last() {
            Some(last) => {
                self.after = last.id;
                Ok(Some(rows))
            }
            None => Ok(None),
        }
    }
}

/// Which environments the auditors' view lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateFilter {
    /// An environment status (`submitted`, `ready`, …); None lists every status.
    pub status: Option<String>,
    /// Matches names and short names, case-insensitively.
    pub text: Option<String>,
}

/// One environment as the auditors' view shows it.
#[derive(Debug, Clone)]
pub struct LatestState {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub blueprint: String,
    pub size: String,
    pub updated_at: OffsetDateTime,
    pub request_kind: Option<String>,
    pub request_status: Option<String>,
    pub requested_by: Option<String>,
    pub decided_by: Option<String>,
    pub run_status: Option<String>,
    pub blueprint_version: Option<String>,
    pub last_event_kind: Option<String>,
    pub last_event_at: Option<OffsetDateTime>,
    pub event_count: i64,
}

/// A page of the auditors' view and how many environments match in all.
#[derive(Debug, Clone)]
pub struct StatePage {
    pub rows: Vec<LatestState>,
    pub total: i64,
}

/// Every environment of a company (rejected and withdrawn ones too) with its latest request,
/// latest run, last event and event count; most recently changed first, `limit` rows from
/// `offset`. The page of environments is chosen first, so the per-environment lookups (all
/// index scans) run only for the rows shown.
pub async fn latest_states(
    pool: &PgPool,
    company_id: Uuid,
    filter: &StateFilter,
    offset: i64,
    limit: i64,
) -> Result<StatePage, DbError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let offset = offset.max(0);
    let pattern = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(crate::requests::like_pattern);
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM environments e
           WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
             AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)"#,
        company_id,
        status,
        pattern
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as!(
        LatestState,
        r#"SELECT e.id AS "id!", e.name AS "name!", e.slug AS "slug!", e.status AS "status!",
                  e.blueprint AS "blueprint!", e.size AS "size!", e.updated_at AS "updated_at!",
                  r.kind AS "request_kind?", r.status AS "request_status?",
                  ru.display_name AS "requested_by?", du.display_name AS "decided_by?",
                  run.status AS "run_status?", run.blueprint_version AS "blueprint_version?",
                  last.kind AS "last_event_kind?", last.created_at AS "last_event_at?",
                  counted.n AS "event_count!"
           FROM (SELECT * FROM environments e
                 WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
                   AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)
                 ORDER BY e.updated_at DESC, e.id
                 LIMIT $4 OFFSET $5) e
           LEFT JOIN LATERAL (
               SELECT kind, status, requested_by, decided_by FROM requests
               WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1) r ON true
           LEFT JOIN users ru ON ru.id = r.requested_by
           LEFT JOIN users du ON du.id = r.decided_by
           LEFT JOIN LATERAL (
               SELECT status, blueprint_version FROM runs
               WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1) run ON true
           LEFT JOIN LATERAL (
               SELECT kind, created_at FROM events
               WHERE environment_id = e.id ORDER BY id DESC LIMIT 1) last ON true
           CROSS JOIN LATERAL (
               SELECT count(*) AS n FROM events WHERE environment_id = e.id) counted
           ORDER BY e.updated_at DESC, e.id"#,
        company_id,
        status,
        pattern,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    Ok(StatePage { rows, total })
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
        "request_id": e.request_id,
        "details": e.details,
    })
}
