//! An environment's life after it is set up: the change form (from its current spec), the
//! decommission request, and what runs now (each app's chart version and Helm revision).
// The change form's fields arrive as the server function's arguments (one per form field), and
// the `#[server]` macro repeats them in the browser's stub, where a function-level allow does not
// reach.
#![allow(clippy::too_many_arguments)]

use berth_domain::Size;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

/// One value a manager may change, as the change form shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeableView {
    /// `overrides.<app>.<key>`, the field's name in the form and in its errors.
    pub field: String,
    pub app: String,
    pub key: String,
    pub title: String,
    pub description: String,
    pub integer: bool,
    /// The value in force now (the override, else the blueprint's default; empty when the
    /// chart's own default applies).
    pub current: String,
    pub hint: String,
}

/// Where the change form starts: the environment's current spec and what may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFormView {
    pub environment_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub size: Size,
    pub blueprint: String,
    pub blueprint_version: String,
    /// Published versions newer than the one deployed, newest first.
    pub newer_versions: Vec<String>,
    pub changeable: Vec<ChangeableView>,
    /// Whether a change (or a decommission) may be asked for now, or why not.
    pub can_change: Result<(), String>,
    pub can_decommission: Result<(), String>,
    /// What the environment ran before its last applied change, when it was changed.
    pub previous: Option<PreviousSpecView>,
    /// Whether a return to `previous` may be asked for now, or why not.
    pub can_return: Result<(), String>,
}

/// The spec before the last applied change, as far as a return brings it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSpecView {
    pub size: Size,
    pub blueprint_version: String,
    /// `<app>.<key> = <value>` for each application setting it overrode.
    pub overrides: Vec<String>,
}

/// What one app of an environment runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseView {
    pub app: String,
    pub release: String,
    pub chart_version: String,
    pub revision: u64,
    pub updated_at: Stamp,
}

#[cfg(feature = "ssr")]
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The change form's starting point for an environment.
#[server(endpoint = "get_change_form", output = super::codec::JsonOut)]
pub async fn get_change_form(environment_id: Uuid) -> Result<ChangeFormView, AppError> {
    use super::guard;
    use berth_domain::{policy::authorize, Action};
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(Action::ReadEnvironments).await?;
        let env = berth_db::requests::get_environment(&s.pool, environment_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let current = env.current_spec()?;
        let previous = berth_runs::lifecycle::previous_spec(&s.pool, environment_id)
            .await?
            .map(|p| PreviousSpecView {
                size: p.size,
                blueprint_version: p
                    .blueprint_version
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                overrides: p
                    .overrides
                    .0
                    .iter()
                    .flat_map(|(app, values)| {
                        values
                            .iter()
                            .map(move |(key, v)| format!("{app}.{key} = {}", json_text(v)))
                    })
                    .collect(),
            });
        let blueprint_name = env.blueprint.as_str();
        let version = env.blueprint_version.clone().unwrap_or_default();
        let blueprint = s
            .templates
            .blueprint_at(blueprint_name, &version)
            .or_else(|| s.templates.blueprint(blueprint_name));
        let changeable = blueprint
            .map(|bp| {
                bp.changeable()
                    .into_iter()
                    .map(|f| {
                        let current_value = current
                            .overrides
                            .get(&f.app, &f.key)
                            .or_else(|| f.default.for_size(env.size.as_str()))
                            .map(json_text)
                            .unwrap_or_default();
                        ChangeableView {
                            integer: f.kind == berth_blueprint::FieldKind::Integer,
                            field: f.field,
                            app: f.app,
                            key: f.key,
                            title: f.title,
                            description: f.description,
                            current: current_value,
                            hint: f.hint,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let newer_versions = s
            .templates
            .versions(blueprint_name)
            .into_iter()
            .take_while(|v| *v != version)
            .collect();
        let settled = if env.status.accepts_requests() {
            Ok(())
        } else {
            Err(format!(
                "This environment is {}; changes can be asked for when it is ready or failed.",
                env.status
            ))
        };
        let allowed = |a: Action| {
            authorize(Some(&actor), a)
                .map_err(|d| d.to_string())
                .and(settled.clone())
        };
        Ok(ChangeFormView {
            environment_id,
            name: env.name.clone(),
            slug: env.slug.clone(),
            description: env.description.clone(),
            owner_contact: env.owner_contact.clone(),
            size: env.size,
            blueprint: blueprint_name.to_owned(),
            blueprint_version: version,
            newer_versions,
            changeable,
            can_change: allowed(Action::RequestChange),
            can_decommission: allowed(Action::RequestDecommission),
            can_return: match previous {
                Some(_) => allowed(Action::RequestReturn),
                None => Err("The environment has not been changed since it was set up.".into()),
            },
            previous,
        })
    })
    .await
}

/// Asks for a change. `overrides` maps `<app>.<key>` to the value typed (empty: the blueprint's
/// default). Field errors come back as 422 with each field named; nothing is stored.
#[server(endpoint = "request_change", output = super::codec::JsonOut)]
pub async fn request_change(
    environment_id: Uuid,
    name: Option<String>,
    slug: Option<String>,
    description: String,
    owner_contact: String,
    size: String,
    #[server(default)] blueprint_version: String,
    #[server(default)] overrides: std::collections::BTreeMap<String, String>,
) -> Result<Uuid, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::RequestChange).await?;
        let form = ChangeRequestForm {
            name,
            slug,
            description,
            owner_contact,
            size,
            blueprint_version,
            overrides,
        };
        let request_id = change(&s, &actor, environment_id, &form).await?;
        leptos_axum::redirect(&format!("/requests/{request_id}"));
        Ok(request_id)
    })
    .await
}

/// The change form's fields as typed; `overrides` maps `<app>.<key>` to the value typed (empty:
/// the blueprint's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestForm {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: String,
    pub owner_contact: String,
    pub size: String,
    pub blueprint_version: String,
    pub overrides: std::collections::BTreeMap<String, String>,
}

/// Stores a change request (and queues its plan) for an actor the caller has authorized; every
/// refused field comes back at once as [`AppError::Fields`]. The page and the API call this.
#[cfg(feature = "ssr")]
pub async fn change(
    s: &super::guard::Services,
    actor: &berth_domain::Actor,
    environment_id: Uuid,
    form: &ChangeRequestForm,
) -> Result<Uuid, AppError> {
    let env = berth_db::requests::get_environment(&s.pool, environment_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let bp = s
        .templates
        .blueprint_at(
            env.blueprint.as_str(),
            env.blueprint_version.as_deref().unwrap_or_default(),
        )
        .or_else(|| s.templates.blueprint(env.blueprint.as_str()));
    let fields = bp.map(|b| b.changeable()).unwrap_or_default();
    let size_for_defaults = form.size.trim().to_owned();
    let mut parsed = berth_domain::AppOverrides::default();
    let mut errors = berth_domain::SpecErrors::default();
    for (name, raw) in &form.overrides {
        let raw = raw.trim();
        let Some((app, key)) = name.split_once('.') else {
            errors.push(&format!("overrides.{name}"), "Unknown value.");
            continue;
        };
        let field = fields.iter().find(|f| f.app == app && f.key == key);
        // The blueprint's default is no override: the environment keeps following it. That
        // is the new size's default, or the current size's left as the form showed it when
        // nothing overrides it now (a size change then brings the new size's default).
        let default = field.and_then(|f| f.default.for_size(&size_for_defaults));
        let shown_default = field
            .filter(|_| env.overrides.get(app).and_then(|v| v.get(key)).is_none())
            .and_then(|f| f.default.for_size(env.size.as_str()));
        if raw.is_empty()
            || default.is_some_and(|d| json_text(d) == raw)
            || shown_default.is_some_and(|d| json_text(d) == raw)
        {
            continue;
        }
        let value = match field.map(|f| f.kind) {
            Some(berth_blueprint::FieldKind::Integer) => match raw.parse::<i64>() {
                Ok(n) => serde_json::json!(n),
                Err(_) => {
                    errors.push(&format!("overrides.{app}.{key}"), "Enter a whole number.");
                    continue;
                }
            },
            _ => serde_json::json!(raw),
        };
        parsed
            .0
            .entry(app.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
    }
    if !errors.is_empty() {
        return Err(AppError::Fields(errors));
    }
    let change = berth_domain::ChangeForm {
        name: form.name.clone(),
        slug: form.slug.clone(),
        description: form.description.clone(),
        owner_contact: form.owner_contact.clone(),
        size: form.size.clone(),
        blueprint_version: form.blueprint_version.clone(),
        overrides: parsed,
    };
    let sub =
        berth_runs::lifecycle::submit_change(&s.pool, &s.templates, environment_id, actor, &change)
            .await?;
    Ok(sub.request_id)
}

/// Asks for the environment to be decommissioned; `confirm` must be its name, typed.
#[server(endpoint = "request_decommission", output = super::codec::JsonOut)]
pub async fn request_decommission(environment_id: Uuid, confirm: String) -> Result<Uuid, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::RequestDecommission).await?;
        let sub =
            berth_runs::lifecycle::submit_decommission(&s.pool, environment_id, &actor, &confirm)
                .await?;
        leptos_axum::redirect(&format!("/requests/{}", sub.request_id));
        Ok(sub.request_id)
    })
    .await
}

/// Asks for the environment to return to its spec before the last applied change (a change
/// request back to it, planned and approved like any other).
#[server(endpoint = "request_return", output = super::codec::JsonOut)]
pub async fn request_return(environment_id: Uuid) -> Result<Uuid, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::RequestReturn).await?;
        let sub =
            berth_runs::lifecycle::submit_return(&s.pool, &s.templates, environment_id, &actor)
                .await?;
        leptos_axum::redirect(&format!("/requests/{}", sub.request_id));
        Ok(sub.request_id)
    })
    .await
}

/// What each app of the environment runs now.
#[server(endpoint = "get_releases", output = super::codec::JsonOut)]
pub async fn get_releases(environment_id: Uuid) -> Result<Vec<ReleaseView>, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::ReadEnvironments).await?;
        Ok(berth_runs::releases_of(&s.pool, environment_id)
            .await?
            .into_iter()
            .map(|r| ReleaseView {
                app: r.app,
                release: r.release,
                chart_version: r.chart_version,
                revision: r.revision,
                updated_at: r.updated_at.into(),
            })
            .collect())
    })
    .await
}
