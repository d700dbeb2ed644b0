//! Submitting requests: a new environment, a change, a decommission.

use berth_domain::{
    policy::{authorize, Action},
    Actor, RequestKind, RequestSpec,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Environment, Submission};
use crate::{events, DbError};

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

pub(super) fn taken(e: sqlx::Error, spec: &RequestSpec) -> DbError {
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

/// Stores a request and its `request.submitted` event. At most one request per environment
/// awaits a decision (the `requests_one_open` index): a second one is a [`DbError::Conflict`].
pub(super) async fn insert_request(
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
pub(super) fn refuse_unless_settled(env: &Environment, what: &str) -> Result<(), DbError> {
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
