//! Legacy v3 apps (catalog v1, contract §5): templates, create validation, condition-driven
//! states (with the optional born-`active` race), upgrade 204 with replace semantics, rollback,
//! delete. Only served when the simulator runs with `legacy_apps`.

mod changes;

use std::time::Instant;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::request::Req;
use super::respond::rfc3339;
use super::respond::{collection, json_response, norman_error, norman_method_not_allowed};
use crate::world::{LegacyApp, LegacyRevision, World};
use changes::{create, rollback, upgrade};

/// `catalog://?catalog=X&type=…&template=T&version=V` → (repo name, template, version).
fn parse_external_id(id: &str) -> Option<(String, String, String)> {
    let q = id.strip_prefix("catalog://?")?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(q).ok()?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let catalog = get("catalog")?;
    let repo = catalog.rsplit('/').next().unwrap_or(&catalog).to_owned();
    Some((repo, get("template")?, get("version")?))
}

fn project_cluster(project_id: &str) -> &str {
    project_id.split(':').next().unwrap_or(project_id)
}

fn check_external_id(
    world: &World,
    cluster: &str,
    external_id: &str,
) -> Result<(String, String), Box<Response>> {
    let server_error = |m: String| {
        Box::new(norman_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerError",
            m,
            None,
        ))
    };
    let Some((repo, template, version)) = parse_external_id(external_id) else {
        return Err(Box::new(norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidFormat",
            format!("invalid externalId {external_id:?}"),
            Some("externalId"),
        )));
    };
    let found = world
        .repos
        .get(cluster)
        .and_then(|r| r.get(&repo))
        .and_then(|r| r.charts.get(&template))
        .is_some_and(|versions| versions.iter().any(|v| v.version == version));
    if !found {
        return Err(server_error(format!(
            "failed to find template version for {repo}-{template}-{version}"
        )));
    }
    Ok((template, version))
}

/// The condition-driven state at `now` (contract §5).
fn state(
    world: &World,
    app: &LegacyApp,
    now: Instant,
) -> (&'static str, &'static str, Vec<Value>, String) {
    if app.removing_since.is_some() {
        return ("removing", "yes", Vec::new(), String::new());
    }
    let t = &world.config_timings;
    let installed_at = app.started + t.operation_wait + t.operation_run;
    let deployed_at = installed_at + t.helm_ready;
    let cond = |ty: &str, status: &str| json!({"type": ty, "status": status});
    if now < app.started + t.operation_wait && app.born_active {
        return ("active", "no", Vec::new(), String::new());
    }
    if now < installed_at {
        return (
            "installing",
            "yes",
            vec![cond("Installed", "Unknown")],
            String::new(),
        );
    }
    if let Some(msg) = &app.fail_message {
        return (
            "installing",
            "error",
            vec![cond("Installed", "False")],
            msg.clone(),
        );
    }
    if now < deployed_at {
        return (
            "deploying",
            "yes",
            vec![cond("Installed", "True"), cond("Deployed", "Unknown")],
            String::new(),
        );
    }
    (
        "active",
        "no",
        vec![cond("Installed", "True"), cond("Deployed", "True")],
        String::new(),
    )
}

fn app_json(world: &World, req: &Req, app: &LegacyApp, now: Instant) -> Value {
    let (st, transitioning, conditions, message) = state(world, app, now);
    let short = app.project_id.split(':').nth(1).unwrap_or(&app.project_id);
    let id = format!("{short}:{}", app.name);
    let self_link = format!("{}/v3/project/{}/apps/{id}", req.base, app.project_id);
    json!({
        "id": id, "type": "app", "baseType": "app", "name": app.name, "projectId": app.project_id,
        "targetNamespace": app.target_namespace, "externalId": app.current.external_id,
        "answers": app.current.answers, "valuesYaml": app.current.values_yaml,
        "appRevisionId": app.applied_revision().map(|r| format!("{short}:{}", r.id)), "state": st, "transitioning": transitioning,
        "transitioningMessage": message, "conditions": conditions,
        "links": {"self": self_link, "update": self_link, "remove": self_link,
                  "revision": format!("{self_link}/revision"),
                  "revisions": format!("{}/v3/project/{}/apprevisions?appId={}", req.base, app.project_id, app.name)},
        "actions": {"upgrade": format!("{self_link}?action=upgrade"), "rollback": format!("{self_link}?action=rollback")},
    })
}

/// An apprevision as Norman shows it (no status embedding: the content is under `status`).
fn revision_json(req: &Req, app: &LegacyApp, r: &LegacyRevision) -> Value {
    let short = app.project_id.split(':').nth(1).unwrap_or(&app.project_id);
    let id = format!("{short}:{}", r.id);
    json!({
        "id": id, "type": "appRevision", "baseType": "appRevision", "name": r.id,
        "namespaceId": short, "projectId": app.project_id,
        "labels": {"io.cattle.field/appId": app.name},
        "created": rfc3339(r.created_wall), "createdTS": r.created_ms,
        "status": {"externalId": r.external_id, "answers": r.answers, "valuesYaml": r.values_yaml,
                   "projectId": app.project_id, "digest": format!("{:x}", r.created_ms)},
        "links": {"self": format!("{}/v3/project/{}/apprevisions/{id}", req.base, app.project_id)},
        "actions": {},
    })
}

fn revisions_collection(req: &Req, project_id: &str, data: Vec<Value>) -> Response {
    json_response(
        StatusCode::OK,
        collection(
            "appRevision",
            format!("{}/v3/project/{project_id}/apprevisions", req.base),
            data,
        ),
    )
}

/// `/v3/project/<projectId>/apprevisions[/<id>]` (`?appId=<name>` filters by app).
pub fn app_revisions(world: &mut World, req: &Req, segs: &[&str]) -> Response {
    if !world.legacy_enabled {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "schema appRevisions not found",
            None,
        );
    }
    let project_id = segs[1];
    if req.method != Method::GET {
        return norman_method_not_allowed();
    }
    let all: Vec<(LegacyApp, LegacyRevision)> = world
        .legacy_apps
        .values()
        .filter(|a| a.project_id == project_id)
        .flat_map(|a| a.history.iter().map(move |r| (a.clone(), r.clone())))
        .collect();
    match segs.get(3) {
        None => {
            let data = all
                .iter()
                .filter(|(a, _)| req.q("appId").is_none_or(|n| n == a.name))
                .map(|(a, r)| revision_json(req, a, r))
                .collect();
            revisions_collection(req, project_id, data)
        }
        Some(id) => {
            let name = id.rsplit(':').next().unwrap_or(id);
            match all.iter().find(|(_, r)| r.id == name) {
                Some((a, r)) => json_response(StatusCode::OK, revision_json(req, a, r)),
                None => norman_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("apprevisions.project.cattle.io \"{name}\" not found"),
                    None,
                ),
            }
        }
    }
}

/// `GET /v3/templates/<ns>:<catalog>-<template>` (or `<catalog>-<template>`).
pub fn template(world: &mut World, req: &Req, id: &str) -> Response {
    if !world.legacy_enabled {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "schema templates not found",
            None,
        );
    }
    let (cluster, rest) = id.split_once(':').unwrap_or(("local", id));
    let found = world.repos.get(cluster).and_then(|repos| {
        repos.values().find_map(|repo| {
            let template = rest.strip_prefix(&format!("{}-", repo.name))?;
            repo.charts
                .get(template)
                .map(|v| (repo.name.clone(), template.to_owned(), v.clone()))
        })
    });
    let Some((catalog, template, versions)) = found else {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("templates \"{id}\" not found"),
            None,
        );
    };
    let links: Map<String, Value> = versions
        .iter()
        .map(|v| {
            (
                v.version.clone(),
                json!(format!(
                    "{}/v3/templateVersions/{id}-{}",
                    req.base, v.version
                )),
            )
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"id": id, "type": "template", "name": template, "catalogId": catalog,
               "defaultVersion": versions.first().map(|v| v.version.clone()), "versionLinks": links,
               "links": {"self": format!("{}/v3/templates/{id}", req.base)}}),
    )
}

/// `/v3/projects/<projectId>/apps[/<id>]`.
pub fn apps(world: &mut World, now: Instant, req: &Req, segs: &[&str]) -> Response {
    if !world.legacy_enabled {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "schema apps not found",
            None,
        );
    }
    let project_id = segs[1].to_owned();
    if !world.projects.iter().any(|p| p.id == project_id) {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("projects \"{project_id}\" not found"),
            None,
        );
    }
    let removal = world.config_timings.project_activate;
    world
        .legacy_apps
        .retain(|_, a| a.removing_since.is_none_or(|t| now < t + removal));
    let cluster = project_cluster(&project_id).to_owned();
    match (req.method.clone(), segs.len()) {
        (Method::GET, 3) => {
            let data = world
                .legacy_apps
                .values()
                .filter(|a| a.project_id == project_id)
                .filter(|a| req.q("name").is_none_or(|n| n == a.name))
                .map(|a| app_json(world, req, a, now))
                .collect();
            json_response(
                StatusCode::OK,
                collection(
                    "app",
                    format!("{}/v3/projects/{project_id}/apps", req.base),
                    data,
                ),
            )
        }
        (Method::POST, 3) => create(world, now, req, &project_id, &cluster),
        (Method::GET, 5) if segs[4] == "revision" => {
            // The app's `revision` link: its apprevisions.
            let name = segs[3].rsplit(':').next().unwrap_or(segs[3]);
            let Some(app) = world
                .legacy_apps
                .get(&(project_id.clone(), name.to_owned()))
            else {
                return norman_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("apps \"{name}\" not found"),
                    None,
                );
            };
            let data = app
                .history
                .iter()
                .map(|r| revision_json(req, app, r))
                .collect();
            revisions_collection(req, &project_id, data)
        }
        (method, 4) => {
            let name = segs[3].rsplit(':').next().unwrap_or(segs[3]).to_owned();
            let key = (project_id.clone(), name.clone());
            let Some(app) = world.legacy_apps.get(&key).cloned() else {
                return norman_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("apps \"{name}\" not found"),
                    None,
                );
            };
            match (method, req.q("action")) {
                (Method::GET, None) => {
                    json_response(StatusCode::OK, app_json(world, req, &app, now))
                }
                (Method::DELETE, None) => {
                    let a = world.legacy_apps.get_mut(&key).expect("exists");
                    a.removing_since.get_or_insert(now);
                    let a = a.clone();
                    json_response(StatusCode::OK, app_json(world, req, &a, now))
                }
                (Method::POST, Some("upgrade")) => upgrade(world, now, req, &cluster, &key, &app),
                (Method::POST, Some("rollback")) => rollback(world, now, req, &cluster, &key, &app),
                (Method::POST, Some(other)) => norman_error(
                    StatusCode::NOT_FOUND,
                    "ActionNotAvailable",
                    format!("action {other} not available"),
                    None,
                ),
                _ => norman_method_not_allowed(),
            }
        }
        _ => norman_error(StatusCode::NOT_FOUND, "NotFound", "not found", None),
    }
}
