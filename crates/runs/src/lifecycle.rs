//! Requests about an environment that exists: a change (or a return to the spec before the
//! last change) and a decommission. Each is stored with
//! its first plan queued in one transaction, like a new unit's request
//! ([`crate::plans::submit_request`]), after the checks only this crate can make: no run of the
//! environment is live, the blueprint version is published, the overrides hold against the
//! blueprint's schema.

use berth_blueprint::Templates;
use berth_db::requests::{Environment, Submission};
use berth_db::DbError;
use berth_domain::{Action, Actor, BlueprintVersion, ChangeForm, RequestSpec, SpecErrors};
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
    berth_domain::policy::authorize(Some(actor), Action::RequestChange)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let env = berth_db::requests::lock_environment(&mut tx, environment_id).await?;
    refuse_while_a_run_is_live(&mut tx, environment_id).await?;
    let sub = change_in(&mut tx, templates, &env, actor, form, Action::RequestChange).await?;
    tx.commit().await?;
    Ok(sub)
}

/// What the environment ran before its last applied change: the spec of the create or change
/// request whose run succeeded before the latest one, at the blueprint version that run
/// deployed. `None` when no change was ever applied.
pub async fn previous_spec<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    environment_id: Uuid,
) -> Result<Option<RequestSpec>, EngineError> {
    let row = sqlx::query!(
        r#"SELECT q.spec, r.blueprint_version FROM runs r JOIN requests q ON q.id = r.request_id
           WHERE r.environment_id = $1 AND r.status = 'succeeded'
             AND q.kind IN ('create', 'change')
           ORDER BY r.finished_at DESC, r.id OFFSET 1 LIMIT 1"#,
        environment_id
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| {
        let mut spec: RequestSpec = serde_json::from_value(r.spec)
            .map_err(|e| EngineError::Corrupt(format!("request spec: {e}")))?;
        spec.blueprint_version = Some(
            BlueprintVersion::parse(&r.blueprint_version)
                .map_err(|e| EngineError::Corrupt(format!("run blueprint version: {e}")))?,
        );
        Ok(spec)
    })
    .transpose()
}

/// Stores a change request back to the environment's spec before its last applied change (see
/// [`previous_spec`]) and queues its plan: its size, blueprint version and application
/// settings; the description and owner contact stay as they are now. Checked like any change
/// (the version must still be published, the settings must hold against its schema, something
/// must differ), and planned and approved like one.
pub async fn submit_return(
    pool: &PgPool,
    templates: &Templates,
    environment_id: Uuid,
    actor: &Actor,
) -> Result<Submission, EngineError> {
    berth_domain::policy::authorize(Some(actor), Action::RequestReturn)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
    let env = berth_db::requests::lock_environment(&mut tx, environment_id).await?;
    refuse_while_a_run_is_live(&mut tx, environment_id).await?;
    let previous = previous_spec(&mut *tx, environment_id)
        .await?
        .ok_or_else(|| {
            EngineError::Conflict(
                "This environment has not been changed since it was set up: there is no earlier \
             spec to return to."
                    .into(),
            )
        })?;
    let form = ChangeForm {
        name: None,
        slug: None,
        description: env.description.clone(),
        owner_contact: env.owner_contact.clone(),
        size: previous.size.as_str().to_owned(),
        blueprint_version: previous
            .blueprint_version
            .as_ref()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        overrides: previous.overrides,
    };
    let sub = change_in(
        &mut tx,
        templates,
        &env,
        actor,
        &form,
        Action::RequestReturn,
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}

/// The checks and the insert of a change request, in the caller's transaction with the
/// environment locked and no run live.
async fn change_in(
    tx: &mut PgConnection,
    templates: &Templates,
    env: &Environment,
    actor: &Actor,
    form: &ChangeForm,
    asked_as: Action,
) -> Result<Submission, EngineError> {
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
    let sub = berth_db::requests::submit_change_in(&mut *tx, env, actor, &spec, asked_as).await?;
    enqueue_plan(
        tx,
        sub.request_id,
        sub.environment_id,
        PlanReason::Submitted,
        Some(actor.user_id),
    )
    .await?;
    Ok(sub)
}

/// Stores a decommission request (the typed name must match) and queues its plan.
pub async fn submit_decommission(
    pool: &PgPool,
    environment_id: Uuid,
    actor: &Actor,
    confirmation: &str,
) -> Result<Submission, EngineError> {
    berth_domain::policy::authorize(Some(actor), Action::RequestDecommission)?;
    let mut tx = berth_db::begin_as(pool, actor).await?;
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
