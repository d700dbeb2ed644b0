//! Environments and the requests that create or change them.
//! Reading them here; submitting, deciding and moving statuses in the submodules.

mod decide;
mod status;
mod submit;

pub use decide::{decide, decide_in, withdraw, ApprovalBinding, Decided};
pub use status::{apply_spec, set_status, set_status_after};
pub use submit::{submit, submit_change_in, submit_decommission_in, submit_in};

use berth_domain::{
    AppOverrides, BlueprintName, BlueprintVersion, EnvironmentStatus, RequestKind, RequestSpec,
    RequestStatus, Size,
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone)]
pub struct EnvironmentSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: EnvironmentStatus,
    pub blueprint: BlueprintName,
    pub size: Size,
    pub created_by_name: String,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub id: Uuid,
    pub company_name: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub status: EnvironmentStatus,
    pub blueprint: BlueprintName,
    pub size: Size,
    /// The blueprint version deployed (`None` until the first run succeeds).
    pub blueprint_version: Option<String>,
    /// The per-app overrides in force (`{}` when none).
    pub overrides: serde_json::Value,
    pub created_by_name: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub decommissioned_at: Option<OffsetDateTime>,
}

impl Environment {
    /// The specification the environment runs now: where a change form starts, and what a
    /// change is compared with.
    pub fn current_spec(&self) -> Result<RequestSpec, DbError> {
        let corrupt = |what: &str, e: String| DbError::Corrupt(format!("environment {what}: {e}"));
        Ok(RequestSpec {
            name: berth_domain::UnitName::parse(&self.name).map_err(|e| corrupt("name", e))?,
            slug: berth_domain::UnitSlug::parse(&self.slug).map_err(|e| corrupt("slug", e))?,
            description: berth_domain::Description::parse(&self.description)
                .map_err(|e| corrupt("description", e))?,
            owner_contact: berth_domain::OwnerContact::parse(&self.owner_contact)
                .map_err(|e| corrupt("owner", e))?,
            blueprint: self.blueprint,
            size: self.size,
            blueprint_version: self
                .blueprint_version
                .as_deref()
                .map(BlueprintVersion::parse)
                .transpose()
                .map_err(|e| corrupt("blueprint version", e))?,
            overrides: serde_json::from_value::<AppOverrides>(self.overrides.clone())
                .map_err(|e| corrupt("overrides", e.to_string()))?
                .normalized(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub environment_name: String,
    pub kind: RequestKind,
    pub spec: RequestSpec,
    pub status: RequestStatus,
    pub requested_by: Uuid,
    pub requested_by_name: String,
    pub created_at: OffsetDateTime,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub decision_note: Option<String>,
}

/// Identifiers of a stored submission.
#[derive(Debug, Clone, Copy)]
pub struct Submission {
    pub environment_id: Uuid,
    pub request_id: Uuid,
}

/// Escapes `%`, `_` and `\` so a search term matches literally inside ILIKE.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The company's environments, most recently changed first (the first
/// [`MAX_PAGE`](crate::lists::MAX_PAGE)); `query` filters by name or slug. The list page reads
/// them a page at a time: [`crate::lists::environments`].
pub async fn list_environments(
    pool: &PgPool,
    company_id: Uuid,
    query: Option<&str>,
) -> Result<Vec<EnvironmentSummary>, DbError> {
    let filter = crate::lists::ListFilter {
        status: None,
        text: query.map(str::to_owned),
    };
    let page = crate::lists::environments(
        pool,
        company_id,
        &filter,
        crate::lists::ListCursor::First,
        crate::lists::MAX_PAGE,
    )
    .await?;
    Ok(page.rows)
}

pub async fn get_environment(pool: &PgPool, id: Uuid) -> Result<Option<Environment>, DbError> {
    select_environment(pool, id).await
}

/// Locks an environment for a request about it (one request at a time decides its fate).
pub async fn lock_environment(conn: &mut PgConnection, id: Uuid) -> Result<Environment, DbError> {
    sqlx::query_scalar!("SELECT id FROM environments WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DbError::NotFound)?;
    select_environment(&mut *conn, id)
        .await?
        .ok_or(DbError::NotFound)
}

async fn select_environment<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<Environment>, DbError> {
    let env = sqlx::query_as!(
        Environment,
        r#"SELECT e.id, c.name AS company_name, e.name, e.slug, e.description, e.owner_contact,
                  e.status AS "status: EnvironmentStatus", e.blueprint AS "blueprint: BlueprintName",
                  e.size AS "size: Size", e.blueprint_version, e.overrides, e.created_at,
                  e.updated_at, e.decommissioned_at, u.display_name AS created_by_name
           FROM environments e
           JOIN companies c ON c.id = e.company_id
           JOIN users u ON u.id = e.created_by
           WHERE e.id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(env)
}

/// Requests selected by id or by environment (one query serves both, newest first).
async fn select_requests(
    pool: &PgPool,
    id: Option<Uuid>,
    environment_id: Option<Uuid>,
) -> Result<Vec<Request>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.environment_id, e.name AS environment_name,
                  r.kind AS "kind: RequestKind", r.spec,
                  r.status AS "status: RequestStatus", r.requested_by,
                  ru.display_name AS requested_by_name,
                  r.created_at, du.display_name AS "decided_by_name?", r.decided_at,
                  r.decision_note
           FROM requests r
           JOIN environments e ON e.id = r.environment_id
           JOIN users ru ON ru.id = r.requested_by
           LEFT JOIN users du ON du.id = r.decided_by
           WHERE ($1::uuid IS NULL OR r.id = $1)
             AND ($2::uuid IS NULL OR r.environment_id = $2)
           ORDER BY r.created_at DESC, r.id
           LIMIT 1000"#,
        id,
        environment_id
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Request {
                id: r.id,
                environment_id: r.environment_id,
                environment_name: r.environment_name,
                kind: r.kind,
                spec: serde_json::from_value(r.spec)
                    .map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?,
                status: r.status,
                requested_by: r.requested_by,
                requested_by_name: r.requested_by_name,
                created_at: r.created_at,
                decided_by_name: r.decided_by_name,
                decided_at: r.decided_at,
                decision_note: r.decision_note,
            })
        })
        .collect()
}

pub async fn get_request(pool: &PgPool, id: Uuid) -> Result<Option<Request>, DbError> {
    Ok(select_requests(pool, Some(id), None).await?.pop())
}

/// An environment's requests, newest first.
pub async fn requests_for_environment(
    pool: &PgPool,
    environment_id: Uuid,
) -> Result<Vec<Request>, DbError> {
    select_requests(pool, None, Some(environment_id)).await
}
