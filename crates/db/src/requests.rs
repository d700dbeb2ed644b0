//! Environments and the requests that create or change them.

use berth_domain::{
    policy::{authorize, Action},
    request::Submitted,
    Actor, AppOverrides, BlueprintName, BlueprintVersion, Decision, EnvironmentStatus, RequestKind,
    RequestSpec, RequestStatus, Size,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{events, DbError};

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

/// Stores a request for a new business unit, its environment and the `request.submitted`
/// event in one transaction. A live environment with the same name or slug is a [`DbError::Taken`].
pub async fn submit(
    pool: &PgPool,
    company_id: Uuid,
    actor: &Actor,
    spec: &RequestSpec,
) -> Result<Submission, DbError> {
    let mut tx = crate::begin_as(pool, actor).await?;
    let submission = submit_in(&mut tx, company_id, actor, spec).await?;
    tx.commit().await?;
    Ok(submission)
}

/// [`submit`] inside the caller's transaction, so that what follows a submission (queueing its
/// plan) commits or rolls back with it.
pub async fn submit_in(
    tx: &mut PgConnection,
    company_id: Uuid,
    actor: &Actor,
    spec: &RequestSpec,
) -> Result<Submission, DbError> {
    authorize(Some(actor), Action::CreateRequest).map_err(berth_domain::TransitionError::from)?;
    let environment_id = Uuid::new_v4();
    let request_id = Uuid::new_v4();
    let spec_json =
        serde_json::to_value(spec).map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?;
    sqlx::query!(
        r#"INSERT INTO environments
             (id, company_id, name, slug, description, owner_contact, blueprint, size, status,
              created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'submitted', $9)"#,
        environment_id,
        company_id,
        spec.name.as_str(),
        spec.slug.as_str(),
        spec.description.as_str(),
        spec.owner_contact.as_str(),
        spec.blueprint.as_str(),
        spec.size.as_str(),
        actor.user_id
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| taken(e, spec))?;
    insert_request(
        &mut *tx,
        environment_id,
        request_id,
        RequestKind::Create,
        spec_json,
        actor,
    )
    .await?;
    tracing::info!(%environment_id, %request_id, slug = %spec.slug, "request submitted");
    Ok(Submission {
        environment_id,
        request_id,
    })
}

fn taken(e: sqlx::Error, spec: &RequestSpec) -> DbError {
    if let sqlx::Error::Database(db) = &e {
        match db.constraint() {
            Some("environments_live_slug") => {
                return DbError::Taken {
                    field: "slug",
                    message: format!(
                        "An environment with the short name '{}' already exists.",
                        spec.slug
                    ),
                }
            }
            Some("environments_live_name") => {
                return DbError::Taken {
                    field: "name",
                    message: format!("A business unit named '{}' already exists.", spec.name),
                }
            }
            _ => {}
        }
    }
    DbError::Sqlx(e)
}

/// Locks a request and proves it is awaiting a decision.
async fn lock_submitted(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<(Submitted, LockedRequest), DbError> {
    let row = sqlx::query!(
        r#"SELECT environment_id, requested_by, status AS "status: RequestStatus", kind, spec
           FROM requests WHERE id = $1 FOR UPDATE"#,
        request_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let submitted = Submitted::new(request_id, row.requested_by, row.status)?;
    Ok((
        submitted,
        LockedRequest {
            environment_id: row.environment_id,
            kind: row.kind,
            spec: row.spec,
        },
    ))
}

/// What a decision needs to know of the request it locked.
struct LockedRequest {
    environment_id: Uuid,
    kind: String,
    spec: serde_json::Value,
}

/// The plan an approval binds (checked by the caller, `berth_runs::decide_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalBinding {
    pub plan_id: Uuid,
    pub plan_hash: String,
    /// The capacity line as the approver saw it checked.
    pub capacity: String,
    pub over_capacity: bool,
    /// The approver's reason for approving over capacity.
    pub capacity_override: Option<String>,
}

/// The outcome of [`decide_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub status: RequestStatus,
    pub environment_id: Uuid,
}

/// Approves or rejects a request (the policy refuses self-decisions), updates its environment
/// and records the event, atomically.
pub async fn decide(
    pool: &PgPool,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
) -> Result<RequestStatus, DbError> {
    let mut tx = crate::begin_as(pool, actor).await?;
    let decided = decide_in(&mut tx, request_id, actor, decision, None).await?;
    tx.commit().await?;
    Ok(decided.status)
}

/// [`decide`] inside the caller's transaction, so that what follows an approval (enqueuing
/// the provisioning run) commits or rolls back with it. The event records exactly what was
/// decided: the request's kind and specification as they stood, and for an approval the plan
/// it binds (its hash, the capacity line and any override reason).
pub async fn decide_in(
    conn: &mut PgConnection,
    request_id: Uuid,
    actor: &Actor,
    decision: Decision,
    binding: Option<&ApprovalBinding>,
) -> Result<Decided, DbError> {
    let (submitted, locked) = lock_submitted(&mut *conn, request_id).await?;
    let decided = submitted.decide(actor, decision)?;
    let status = decided.decision.target();
    let binding = binding.filter(|_| status == RequestStatus::Approved);
    sqlx::query!(
        "UPDATE requests SET decided_by = $2, decided_at = now(), decision_note = $3,
                approved_plan_id = $4, capacity_override = $5
         WHERE id = $1",
        decided.request_id,
        decided.decided_by,
        decided.decision.note(),
        binding.map(|b| b.plan_id),
        binding.and_then(|b| b.capacity_override.as_deref())
    )
    .execute(&mut *conn)
    .await?;
    move_from_submitted(&mut *conn, request_id, status).await?;
    let kind = match status {
        RequestStatus::Approved => events::kind::REQUEST_APPROVED,
        _ => events::kind::REQUEST_REJECTED,
    };
    events::append(
        &mut *conn,
        locked.environment_id,
        Some(request_id),
        Some(actor.user_id),
        kind,
        json!({
            "note": decided.decision.note(),
            "request_kind": locked.kind,
            "spec": locked.spec,
            "plan_id": binding.map(|b| b.plan_id),
            "plan_hash": binding.map(|b| b.plan_hash.as_str()),
            "capacity": binding.map(|b| b.capacity.as_str()),
            "over_capacity": binding.map(|b| b.over_capacity),
            "capacity_override": binding.and_then(|b| b.capacity_override.as_deref()),
        }),
    )
    .await?;
    tracing::info!(%request_id, %status, "request decided");
    Ok(Decided {
        status,
        environment_id: locked.environment_id,
    })
}

/// Withdraws a request still awaiting a decision; only its requester may.
pub async fn withdraw(pool: &PgPool, request_id: Uuid, actor: &Actor) -> Result<(), DbError> {
    let mut tx = crate::begin_as(pool, actor).await?;
    let (submitted, locked) = lock_submitted(&mut tx, request_id).await?;
    let environment_id = locked.environment_id;
    let withdrawn = submitted.withdraw(actor)?;
    move_from_submitted(&mut tx, withdrawn.request_id, RequestStatus::Withdrawn).await?;
    events::append(
        &mut tx,
        environment_id,
        Some(request_id),
        Some(withdrawn.withdrawn_by),
        events::kind::REQUEST_WITHDRAWN,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A decision or withdrawal of a request the caller locked as `submitted`: [`set_status`] must
/// move it (it stands where the proof said).
async fn move_from_submitted(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
) -> Result<(), DbError> {
    if set_status(conn, request_id, to).await? {
        Ok(())
    } else {
        Err(DbError::Corrupt(format!(
            "a submitted request could not become {to}"
        )))
    }
}

/// Stores a request and its `request.submitted` event. At most one request per environment
/// awaits a decision (the `requests_one_open` index): a second one is a [`DbError::Conflict`].
async fn insert_request(
    conn: &mut PgConnection,
    environment_id: Uuid,
    request_id: Uuid,
    kind: RequestKind,
    spec_json: serde_json::Value,
    actor: &Actor,
) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO requests (id, environment_id, kind, spec, requested_by)
         VALUES ($1, $2, $3, $4, $5)",
        request_id,
        environment_id,
        kind as RequestKind,
        spec_json,
        actor.user_id
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("requests_one_open") => {
            DbError::Conflict(
                "A request for this environment already awaits a decision: wait for it or withdraw it first."
                    .into(),
            )
        }
        _ => DbError::Sqlx(e),
    })?;
    events::append(
        &mut *conn,
        environment_id,
        Some(request_id),
        Some(actor.user_id),
        events::kind::REQUEST_SUBMITTED,
        json!({ "kind": kind, "spec": spec_json }),
    )
    .await?;
    Ok(())
}

/// Why a request about an existing environment is refused before anything is stored.
fn refuse_unless_settled(env: &Environment, what: &str) -> Result<(), DbError> {
    if env.status.accepts_requests() {
        Ok(())
    } else {
        Err(DbError::Conflict(format!(
            "This environment is {}; a {what} can be asked for when it is ready or failed.",
            env.status
        )))
    }
}

/// Stores a change request for an environment the caller locked ([`lock_environment`]), in the
/// caller's transaction. `spec` is the new specification, parsed from the form against the
/// current one (`berth_domain::ChangeForm::parse`) and its overrides checked by the blueprint.
/// The caller checks that no run of the environment is live. `asked_as` is
/// [`Action::RequestChange`], or [`Action::RequestReturn`] for a change back to the spec before
/// the last one.
pub async fn submit_change_in(
    conn: &mut PgConnection,
    env: &Environment,
    actor: &Actor,
    spec: &RequestSpec,
    asked_as: Action,
) -> Result<Submission, DbError> {
    if !matches!(asked_as, Action::RequestChange | Action::RequestReturn) {
        return Err(DbError::Corrupt(format!(
            "a change request cannot be asked for as {asked_as:?}"
        )));
    }
    authorize(Some(actor), asked_as).map_err(berth_domain::TransitionError::from)?;
    refuse_unless_settled(env, "change")?;
    let request_id = Uuid::new_v4();
    let spec_json =
        serde_json::to_value(spec).map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?;
    insert_request(
        conn,
        env.id,
        request_id,
        RequestKind::Change,
        spec_json,
        actor,
    )
    .await?;
    tracing::info!(environment_id = %env.id, %request_id, "change requested");
    Ok(Submission {
        environment_id: env.id,
        request_id,
    })
}

/// Stores a decommission request for an environment the caller locked, after the typed
/// confirmation matched its name. Its spec is the environment's current one (what is removed).
pub async fn submit_decommission_in(
    conn: &mut PgConnection,
    env: &Environment,
    actor: &Actor,
    confirmation: &str,
) -> Result<Submission, DbError> {
    authorize(Some(actor), Action::RequestDecommission)
        .map_err(berth_domain::TransitionError::from)?;
    let current = env.current_spec()?;
    berth_domain::lifecycle::check_decommission_confirmation(&current, confirmation)
        .map_err(DbError::Invalid)?;
    refuse_unless_settled(env, "decommission")?;
    let request_id = Uuid::new_v4();
    let spec_json = serde_json::to_value(&current)
        .map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?;
    insert_request(
        conn,
        env.id,
        request_id,
        RequestKind::Decommission,
        spec_json,
        actor,
    )
    .await?;
    tracing::info!(environment_id = %env.id, %request_id, "decommission requested");
    Ok(Submission {
        environment_id: env.id,
        request_id,
    })
}

/// The one way a request's status changes, and its environment's with it (through
/// `EnvironmentStatus::follows`: a create request's status is its environment's, a change shows
/// `changing`, a decommission `decommissioning` then `decommissioned`). Moves only from a status
/// the domain's transition table allows (`RequestStatus::can_become`; the database triggers hold
/// the same tables): returns `false` and changes nothing when the request stands elsewhere, e.g.
/// already at `to` (a retried run whose request went back to `provisioning` earlier). Events are
/// the caller's: each transition records its own details.
pub async fn set_status(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
) -> Result<bool, DbError> {
    set_status_after(conn, request_id, to, false).await
}

/// [`set_status`] for a failed change whose run rolled every app back (`rolled_back`): the
/// environment stays `ready` on its previous spec while the request fails.
pub async fn set_status_after(
    conn: &mut PgConnection,
    request_id: Uuid,
    to: RequestStatus,
    rolled_back: bool,
) -> Result<bool, DbError> {
    let from: Vec<String> = RequestStatus::ALL
        .into_iter()
        .filter(|s| s.can_become(to))
        .map(|s| s.to_string())
        .collect();
    // Back to awaiting a decision (re-approval) clears the decision; the events keep it.
    let moved = sqlx::query!(
        r#"UPDATE requests SET status = $2,
                decided_by = CASE WHEN $2 = 'submitted' THEN NULL ELSE decided_by END,
                decided_at = CASE WHEN $2 = 'submitted' THEN NULL ELSE decided_at END,
                decision_note = CASE WHEN $2 = 'submitted' THEN NULL ELSE decision_note END,
                approved_plan_id = CASE WHEN $2 = 'submitted' THEN NULL ELSE approved_plan_id END,
                capacity_override = CASE WHEN $2 = 'submitted' THEN NULL ELSE capacity_override END
         WHERE id = $1 AND status = ANY($3)
         RETURNING environment_id, kind AS "kind: RequestKind""#,
        request_id,
        to as RequestStatus,
        &from
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(moved) = moved else {
        return Ok(false);
    };
    let current = sqlx::query_scalar!(
        r#"SELECT status AS "status: EnvironmentStatus" FROM environments WHERE id = $1 FOR UPDATE"#,
        moved.environment_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let next = current.follows(moved.kind, to, rolled_back);
    if next != current {
        if !current.can_become(next) {
            return Err(DbError::Corrupt(format!(
                "environment {} cannot go from {current} to {next}",
                moved.environment_id
            )));
        }
        sqlx::query!(
            "UPDATE environments SET status = $2, updated_at = now(),
                    decommissioned_at = CASE WHEN $2 = 'decommissioned' THEN now() END
             WHERE id = $1",
            moved.environment_id,
            next as EnvironmentStatus
        )
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE environments SET updated_at = now() WHERE id = $1",
            moved.environment_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// After a run of `request_id` succeeded: the environment's current specification becomes the
/// request's (a change's new size, description, owner, overrides) and `blueprint_version` the one
/// the run deployed. A decommission's spec is the current one, so nothing moves.
pub async fn apply_spec(
    conn: &mut PgConnection,
    request_id: Uuid,
    blueprint_version: &str,
) -> Result<(), DbError> {
    let row = sqlx::query!(
        r#"SELECT environment_id, spec, kind AS "kind: RequestKind" FROM requests WHERE id = $1"#,
        request_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if row.kind == RequestKind::Decommission {
        return Ok(());
    }
    let spec: RequestSpec = serde_json::from_value(row.spec)
        .map_err(|e| DbError::Corrupt(format!("request spec: {e}")))?;
    let overrides = serde_json::to_value(&spec.overrides)
        .map_err(|e| DbError::Corrupt(format!("overrides: {e}")))?;
    sqlx::query!(
        "UPDATE environments SET description = $2, owner_contact = $3, size = $4,
                blueprint_version = $5, overrides = $6, updated_at = now()
         WHERE id = $1",
        row.environment_id,
        spec.description.as_str(),
        spec.owner_contact.as_str(),
        spec.size as Size,
        blueprint_version,
        overrides
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
