//! The lists of environments — the environment list and the auditors' view — read a page at a
//! time with keyset pagination: both order by most recent change first, ties by id, and a page
//! starts right after (or ends right before) the `(updated_at, id)` of a row. Every page is one
//! bounded range scan of `environments_company_keyset (company_id, updated_at DESC, id)`, so page
//! 100 costs what page 1 costs; there is no `OFFSET`.
//!
//! Changing an environment moves it to the top of the list: someone paging while it changes may
//! see it twice or not at all, as with any live list; a reload shows it.

use berth_domain::{BlueprintName, EnvironmentStatus, RequestKind, RequestStatus, RunStatus, Size};
use sqlx::PgPool;
use time::{macros::datetime, OffsetDateTime};
use uuid::Uuid;

use crate::{requests::EnvironmentSummary, DbError};

/// Largest page a caller may ask for.
pub const MAX_PAGE: i64 = 500;

/// A row's place in the order: its last change, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub updated_at: OffsetDateTime,
    pub id: Uuid,
}

impl ListKey {
    /// Before every row: the first page is the page after it (a bound the index can use, where
    /// `$1 IS NULL OR …` would not be, once PostgreSQL switches to a generic plan).
    const START: ListKey = ListKey {
        updated_at: datetime!(9999-12-31 23:59:59.999999 UTC),
        id: Uuid::nil(),
    };
}

/// Where a page of a list starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListCursor {
    /// The most recently changed rows.
    #[default]
    First,
    /// The rows right after this one (the "next" link).
    After(ListKey),
    /// The rows right before this one (the "previous" link).
    Before(ListKey),
}

/// One page, in list order, with the cursors of its neighbours (None at either end).
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub rows: Vec<T>,
    pub next: Option<ListCursor>,
    pub previous: Option<ListCursor>,
}

/// Which environments a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// An environment's status; None lists every status.
    pub status: Option<EnvironmentStatus>,
    /// Matches names and short names, case-insensitively and literally (no wildcards).
    pub text: Option<String>,
}

impl ListFilter {
    /// Every status, names and short names matching `text`.
    pub fn text(text: &str) -> Self {
        Self {
            status: None,
            text: Some(text.to_owned()),
        }
    }

    /// The status as its column stores it, for the `$n::text IS NULL OR …` filter.
    fn status_param(&self) -> Option<&'static str> {
        self.status.map(EnvironmentStatus::as_str)
    }

    fn pattern_param(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(crate::requests::like_pattern)
    }
}

/// Rows read for a page in either direction, and which way they were read.
struct Fetched<T> {
    rows: Vec<T>,
    /// More rows lie beyond the page in the direction read.
    more: bool,
}

/// Turns rows read after or before a cursor into a page with its links. `exists` answers
/// "is there a row beyond this key" for the other direction (before for `After`, after for
/// `Before`), which the read itself cannot tell.
async fn assemble<T, F, Fut>(
    cursor: ListCursor,
    fetched: Fetched<T>,
    key: impl Fn(&T) -> ListKey,
    exists: F,
) -> Result<ListPage<T>, DbError>
where
    F: FnOnce(Direction, ListKey) -> Fut,
    Fut: std::future::Future<Output = Result<bool, DbError>>,
{
    let Fetched { rows, more } = fetched;
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (key(f), key(l)),
        _ => {
            // An empty page: only a way back to the start is useful.
            let previous = (cursor != ListCursor::First).then_some(ListCursor::First);
            return Ok(ListPage {
                rows,
                next: None,
                previous,
            });
        }
    };
    let (next, previous) = match cursor {
        ListCursor::First => (more.then_some(ListCursor::After(last)), None),
        ListCursor::After(_) => (
            more.then_some(ListCursor::After(last)),
            exists(Direction::Before, first)
                .await?
                .then_some(ListCursor::Before(first)),
        ),
        ListCursor::Before(_) => (
            exists(Direction::After, last)
                .await?
                .then_some(ListCursor::After(last)),
            more.then_some(ListCursor::Before(first)),
        ),
    };
    Ok(ListPage {
        rows,
        next,
        previous,
    })
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    After,
    Before,
}

/// Whether any environment matching `filter` lies after (or before) `key` in list order.
async fn exists_beyond(
    pool: &PgPool,
    company_id: Uuid,
    filter: &ListFilter,
    direction: Direction,
    key: ListKey,
) -> Result<bool, DbError> {
    let (status, pattern) = (filter.status_param(), filter.pattern_param());
    let found = match direction {
        Direction::After => {
            sqlx::query_scalar!(
                r#"SELECT EXISTS (
                 SELECT 1 FROM environments e
                 WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
                   AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)
                   AND e.updated_at <= $4 AND (e.updated_at < $4 OR e.id > $5)) AS "exists!""#,
                company_id,
                status,
                pattern,
                key.updated_at,
                key.id
            )
            .fetch_one(pool)
            .await?
        }
        Direction::Before => {
            sqlx::query_scalar!(
                r#"SELECT EXISTS (
                 SELECT 1 FROM environments e
                 WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
                   AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)
                   AND e.updated_at >= $4 AND (e.updated_at > $4 OR e.id < $5)) AS "exists!""#,
                company_id,
                status,
                pattern,
                key.updated_at,
                key.id
            )
            .fetch_one(pool)
            .await?
        }
    };
    Ok(found)
}

/// One more row than asked tells whether there is a page beyond; rows read backwards are put
/// back in list order.
fn fetched<T>(mut rows: Vec<T>, limit: i64, backwards: bool) -> Fetched<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if backwards {
        rows.reverse();
    }
    Fetched { rows, more }
}

/// The company's environments, most recently changed first, those `filter` selects (a status,
/// a search of names and short names). `limit` rows (at most [`MAX_PAGE`]) from `cursor`.
pub async fn environments(
    pool: &PgPool,
    company_id: Uuid,
    filter: &ListFilter,
    cursor: ListCursor,
    limit: i64,
) -> Result<ListPage<EnvironmentSummary>, DbError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (status, pattern) = (filter.status_param(), filter.pattern_param());
    let (rows, backwards) = match cursor {
        ListCursor::First | ListCursor::After(_) => {
            let after = match cursor {
                ListCursor::After(key) => key,
                _ => ListKey::START,
            };
            let rows = sqlx::query_as!(
                EnvironmentSummary,
                r#"SELECT e.id, e.name, e.slug, e.status AS "status: EnvironmentStatus",
                          e.blueprint AS "blueprint: BlueprintName", e.size AS "size: Size",
                          e.updated_at, u.display_name AS created_by_name
                   FROM environments e JOIN users u ON u.id = e.created_by
                   WHERE e.company_id = $1 AND ($6::text IS NULL OR e.status = $6)
                     AND ($2::text IS NULL OR e.name ILIKE $2 OR e.slug ILIKE $2)
                     AND e.updated_at <= $3 AND (e.updated_at < $3 OR e.id > $4)
                   ORDER BY e.updated_at DESC, e.id
                   LIMIT $5"#,
                company_id,
                pattern,
                after.updated_at,
                after.id,
                limit + 1,
                status
            )
            .fetch_all(pool)
            .await?;
            (rows, false)
        }
        ListCursor::Before(before) => {
            let rows = sqlx::query_as!(
                EnvironmentSummary,
                r#"SELECT e.id, e.name, e.slug, e.status AS "status: EnvironmentStatus",
                          e.blueprint AS "blueprint: BlueprintName", e.size AS "size: Size",
                          e.updated_at, u.display_name AS created_by_name
                   FROM environments e JOIN users u ON u.id = e.created_by
                   WHERE e.company_id = $1 AND ($6::text IS NULL OR e.status = $6)
                     AND ($2::text IS NULL OR e.name ILIKE $2 OR e.slug ILIKE $2)
                     AND e.updated_at >= $3 AND (e.updated_at > $3 OR e.id < $4)
                   ORDER BY e.updated_at, e.id DESC
                   LIMIT $5"#,
                company_id,
                pattern,
                before.updated_at,
                before.id,
                limit + 1,
                status
            )
            .fetch_all(pool)
            .await?;
            (rows, true)
        }
    };
    assemble(
        cursor,
        fetched(rows, limit, backwards),
        |e| ListKey {
            updated_at: e.updated_at,
            id: e.id,
        },
        |direction, key| exists_beyond(pool, company_id, filter, direction, key),
    )
    .await
}

/// One environment as the auditors' view shows it.
#[derive(Debug, Clone)]
pub struct LatestState {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: EnvironmentStatus,
    pub blueprint: String,
    pub size: String,
    pub updated_at: OffsetDateTime,
    pub request_kind: Option<RequestKind>,
    pub request_status: Option<RequestStatus>,
    pub requested_by: Option<String>,
    pub decided_by: Option<String>,
    pub run_status: Option<RunStatus>,
    pub blueprint_version: Option<String>,
    pub last_event_kind: Option<String>,
    pub last_event_at: Option<OffsetDateTime>,
    pub event_count: i64,
}

impl LatestState {
    /// Its place in the list, for the next page's cursor.
    pub fn key(&self) -> ListKey {
        ListKey {
            updated_at: self.updated_at,
            id: self.id,
        }
    }
}

/// A page of the auditors' view and how many environments match in all.
#[derive(Debug, Clone)]
pub struct StatePage {
    pub page: ListPage<LatestState>,
    pub total: i64,
}

/// Every environment of a company (rejected and withdrawn ones too) with its latest request,
/// latest run, last event and event count; most recently changed first, `limit` rows from
/// `cursor`. The page of environments is chosen first, so the per-environment lookups (all
/// index scans) run only for the rows shown. The total is one count of the matching
/// environments, the same on every page.
pub async fn latest_states(
    pool: &PgPool,
    company_id: Uuid,
    filter: &ListFilter,
    cursor: ListCursor,
    limit: i64,
) -> Result<StatePage, DbError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (status, pattern) = (filter.status_param(), filter.pattern_param());
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
    let (rows, backwards) = match cursor {
        ListCursor::First | ListCursor::After(_) => {
            let after = match cursor {
                ListCursor::After(key) => key,
                _ => ListKey::START,
            };
            let rows = sqlx::query_as!(
                LatestState,
                r#"SELECT e.id AS "id!", e.name AS "name!", e.slug AS "slug!",
                          e.status AS "status!: EnvironmentStatus", e.blueprint AS "blueprint!",
                          e.size AS "size!",
                          e.updated_at AS "updated_at!",
                          r.kind AS "request_kind?: RequestKind",
                          r.status AS "request_status?: RequestStatus",
                          ru.display_name AS "requested_by?", du.display_name AS "decided_by?",
                          run.status AS "run_status?: RunStatus",
                          run.blueprint_version AS "blueprint_version?",
                          last.kind AS "last_event_kind?", last.created_at AS "last_event_at?",
                          counted.n AS "event_count!"
                   FROM (SELECT * FROM environments e
                         WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
                           AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)
                           AND e.updated_at <= $4 AND (e.updated_at < $4 OR e.id > $5)
                         ORDER BY e.updated_at DESC, e.id
                         LIMIT $6) e
                   LEFT JOIN LATERAL (
                       SELECT kind, status, requested_by, decided_by FROM requests
                       WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1
                   ) r ON true
                   LEFT JOIN users ru ON ru.id = r.requested_by
                   LEFT JOIN users du ON du.id = r.decided_by
                   LEFT JOIN LATERAL (
                       SELECT status, blueprint_version FROM runs
                       WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1
                   ) run ON true
                   LEFT JOIN LATERAL (
                       SELECT kind, created_at FROM events
                       WHERE environment_id = e.id ORDER BY id DESC LIMIT 1) last ON true
                   CROSS JOIN LATERAL (
                       SELECT count(*) AS n FROM events WHERE environment_id = e.id) counted
                   ORDER BY e.updated_at DESC, e.id"#,
                company_id,
                status,
                pattern,
                after.updated_at,
                after.id,
                limit + 1
            )
            .fetch_all(pool)
            .await?;
            (rows, false)
        }
        ListCursor::Before(before) => {
            let rows = sqlx::query_as!(
                LatestState,
                r#"SELECT e.id AS "id!", e.name AS "name!", e.slug AS "slug!",
                          e.status AS "status!: EnvironmentStatus", e.blueprint AS "blueprint!",
                          e.size AS "size!",
                          e.updated_at AS "updated_at!",
                          r.kind AS "request_kind?: RequestKind",
                          r.status AS "request_status?: RequestStatus",
                          ru.display_name AS "requested_by?", du.display_name AS "decided_by?",
                          run.status AS "run_status?: RunStatus",
                          run.blueprint_version AS "blueprint_version?",
                          last.kind AS "last_event_kind?", last.created_at AS "last_event_at?",
                          counted.n AS "event_count!"
                   FROM (SELECT * FROM environments e
                         WHERE e.company_id = $1 AND ($2::text IS NULL OR e.status = $2)
                           AND ($3::text IS NULL OR e.name ILIKE $3 OR e.slug ILIKE $3)
                           AND e.updated_at >= $4 AND (e.updated_at > $4 OR e.id < $5)
                         ORDER BY e.updated_at, e.id DESC
                         LIMIT $6) e
                   LEFT JOIN LATERAL (
                       SELECT kind, status, requested_by, decided_by FROM requests
                       WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1
                   ) r ON true
                   LEFT JOIN users ru ON ru.id = r.requested_by
                   LEFT JOIN users du ON du.id = r.decided_by
                   LEFT JOIN LATERAL (
                       SELECT status, blueprint_version FROM runs
                       WHERE environment_id = e.id ORDER BY created_at DESC, id DESC LIMIT 1
                   ) run ON true
                   LEFT JOIN LATERAL (
                       SELECT kind, created_at FROM events
                       WHERE environment_id = e.id ORDER BY id DESC LIMIT 1) last ON true
                   CROSS JOIN LATERAL (
                       SELECT count(*) AS n FROM events WHERE environment_id = e.id) counted
                   ORDER BY e.updated_at, e.id DESC"#,
                company_id,
                status,
                pattern,
                before.updated_at,
                before.id,
                limit + 1
            )
            .fetch_all(pool)
            .await?;
            (rows, true)
        }
    };
    let page = assemble(
        cursor,
        fetched(rows, limit, backwards),
        LatestState::key,
        |direction, key| exists_beyond(pool, company_id, filter, direction, key),
    )
    .await?;
    Ok(StatePage { page, total })
}
