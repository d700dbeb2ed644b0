//! Requests about an environment that exists: a change and a decommission. Each is stored with
//! its first plan queued in one transaction, like a new unit's request
//! ([`crate::plans::submit_request`]), after the checks only this crate can make: no run of the
//! environment is live, the blueprint version is published, the overrides hold against the
//! blueprint's schema.

use berth_blueprint::Templates;
use berth_db::requests::Submission;
use berth_db::DbError;
use berth_domain::{Actor, ChangeForm, SpecErrors};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::EngineError;
use crate::plans::{enqueue_plan, PlanReason};

/// No change or decommission while a run of the environment is pending or running.
async fn refuse_while_a_run_is_live(
    conn: &mut PgConnection,
    environment_id: Uuid,
) -> Result<(), EngineError> {
    let live = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM runs WHERE environment_id = $1
               AND status IN ('pending', 'running')) AS "live!""#,
        environment_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if live {
        return Err(EngineError::Conflict(
            "A run of this environment is in progress; ask again when it has finished.".into(),
        ));
    }
    Ok(())
}

/// Stores a change request and queues its plan. The form is parsed against the environment's
/// current spec (name and slug unchanged, something different), the blueprint version must be
/// published, and the overrides must hold against the blueprint's JSON Schema; every field error
/// comes back at once as [`DbError::Invalid`], and nothing is stored.
pub async fn submit_change(
    pool: &PgPool,
    templates: &Templates,
    environment_id: Uuid,
    actor: &Actor,
    form: &ChangeForm,
) -> Result<Submission, EngineError> {
    berth_domain::policy::authorize(Some(actor), berth_domain::Action::RequestChange)?;
    let mut tx = pool.begin().await?;
    let env = berth_db::requests::lock_environment(&mut tx, environment_id).await?;
    refuse_while_a_run_is_live(&mut tx, environment_id).await?;
    let current = env.current_spec()?;
    let mut errors = SpecErrors::default();
    let parsed = form.parse(&current);
    if let Err(e) = &parsed {
        errors.0.extend(e.0.iter().cloned());
    }
    // The version the change asks for (or keeps), and the overrides against its schema.
    let version = parsed
        .as_ref()
        .ok()
        .and_then(|s| s.blueprint_version.clone())
        .or(current.blueprint_version.clone());
    let blueprint = match &version {
        Some(v) => templates.blueprint_at(current.blueprint.as_str(), v.as_str()),
        None => templates.blueprint(current.blueprint.as_str()),
    };
    match blueprint {
        None => errors.push(
            "blueprint_version",
            format!(
                "Version {} of {} is not published; choose one of: {}.",
                version.as_ref().map(|v| v.as_str()).unwrap_or("?"),
                current.blueprint,
                templates.versions(current.blueprint.as_str()).join(", ")
            ),
        ),
        Some(bp) => {
            let raw = serde_json::to_value(&form.overrides)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            if let Err(problems) = bp.validate_overrides(&raw) {
                for p in problems {
                    errors.push(&p.field, p.message);
                }
            }
        }
    }
    let spec = match parsed {
        Ok(spec) if errors.is_empty() => spec,
        _ => return Err(DbError::Invalid(errors).into()),
    };
    let sub = berth_db::requests::submit_change_in(&mut tx, &env, actor, &spec).await?;
    enqueue_plan(
        &mut tx,
        sub.request_id,
        sub.environment_id,
        PlanReason::Submitted,
        Some(actor.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}

/// Stores a decommission request (the typed name must match) and queues its plan.
pub async fn submit_decommission(
    pool: &PgPool,
    environment_id: Uuid,
    actor: &Actor,
    confirmation: &str,
) -> Result<Submission, EngineError> {
    berth_domain::policy::authorize(Some(actor), berth_domain::Action::RequestDecommission)?;
    let mut tx = pool.begin().await?;
    let env = berth_db::requests::lock_environment(&mut tx, environment_id).await?;
    refuse_while_a_run_is_live(&mut tx, environment_id).await?;
    let sub =
        berth_db::requests::submit_decommission_in(&mut tx, &env, actor, confirmation).await?;
    enqueue_plan(
        &mut tx,
        sub.request_id,
        sub.environment_id,
        PlanReason::Submitted,
        Some(actor.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}
