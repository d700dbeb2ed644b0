//! The legacy app calls that change something (contract §5): create, upgrade with replace
//! semantics, rollback to an apprevision; each gives Helm a new revision and records it.

use std::time::{Instant, SystemTime};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{app_json, check_external_id};
use crate::http::request::Req;
use crate::http::respond::{json_response, norman_body, norman_error};
use crate::world::{Action, HelmRecord, LegacyApp, LegacyHelmRevision, LegacyRevision, World};

/// `POST /v3/projects/<projectId>/apps`: validates the body, then installs.
pub(super) fn create(
    world: &mut World,
    now: Instant,
    req: &Req,
    project_id: &str,
    cluster: &str,
) -> Response {
    let project_id = project_id.to_owned();
    let body = match norman_body(req) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let ns = body["targetNamespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let external_id = body["externalId"].as_str().unwrap_or_default().to_owned();
    for (field, v) in [
        ("name", &name),
        ("targetNamespace", &ns),
        ("externalId", &external_id),
    ] {
        if v.is_empty() {
            return norman_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MissingRequired",
                format!("Field {field} is required"),
                Some(field),
            );
        }
    }
    let in_project = world
        .namespaces
        .get(cluster)
        .and_then(|m| m.get(&ns))
        .is_some_and(|n| n.project_id.as_deref() == Some(project_id.as_str()));
    if !in_project {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidReference",
            format!("namespace {ns} is not in project {project_id}"),
            Some("targetNamespace"),
        );
    }
    if world
        .legacy_apps
        .contains_key(&(project_id.clone(), name.clone()))
    {
        return norman_error(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("apps \"{name}\" already exists"),
            None,
        );
    }
    let (template, version) = match check_external_id(world, cluster, &external_id) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let fail = world.faults.fail_charts.get(&template).cloned();
    let placeholder = LegacyRevision {
        id: String::new(),
        external_id: external_id.clone(),
        answers: Map::new(),
        values_yaml: String::new(),
        created_wall: SystemTime::now(),
        created_ms: 0,
        helm_revision: 0,
    };
    let key = (project_id.clone(), name.clone());
    world.legacy_apps.insert(
        key.clone(),
        LegacyApp {
            project_id: project_id.clone(),
            name: name.clone(),
            target_namespace: ns.clone(),
            current: placeholder,
            history: Vec::new(),
            helm: Vec::new(),
            started: now,
            fail_message: None,
            born_active: world.faults.legacy_born_active,
            removing_since: None,
        },
    );
    apply(
        world,
        now,
        &key,
        cluster,
        Action::Install,
        content_of(external_id, &body),
        &template,
        &version,
        "Install complete".into(),
        fail,
    );
    let app = world.legacy_apps[&key].clone();
    json_response(StatusCode::CREATED, app_json(world, req, &app, now))
}

/// `POST …/apps/<id>?action=upgrade`: the body replaces the app's spec (never merged).
pub(super) fn upgrade(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    key: &(String, String),
    app: &LegacyApp,
) -> Response {
    let name = key.1.clone();
    let body = req.body_json().unwrap_or(Value::Null);
    let external_id = body["externalId"]
        .as_str()
        .unwrap_or(&app.current.external_id)
        .to_owned();
    let (template, version) = match check_external_id(world, cluster, &external_id) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    // Replace, never merge: a missing valuesYaml clears it.
    let fail = world
        .faults
        .fail_upgrades
        .get(&name)
        .or_else(|| world.faults.fail_upgrades.get(&template))
        .or_else(|| world.faults.fail_charts.get(&template))
        .cloned();
    apply(
        world,
        now,
        key,
        cluster,
        Action::Upgrade,
        content_of(external_id, &body),
        &template,
        &version,
        "Upgrade complete".into(),
        fail,
    );
    axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
}

/// `POST …/apps/<id>?action=rollback`: back to an apprevision's spec.
pub(super) fn rollback(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    key: &(String, String),
    app: &LegacyApp,
) -> Response {
    let project_id = &key.0;
    let name = key.1.clone();
    // Rancher's handler reads `revisionId` as the apprevision's *name* and
    // prefixes the project's namespace itself (`p-yyyyy:<name>`).
    let body = req.body_json().unwrap_or(Value::Null);
    let rid = body["revisionId"].as_str().unwrap_or_default();
    if rid.is_empty() {
        return norman_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerError",
            "revision is empty",
            None,
        );
    }
    let Some(rev) = app.history.iter().find(|r| r.id == rid).cloned() else {
        let short = project_id.split(':').nth(1).unwrap_or(project_id);
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("apprevisions.project.cattle.io \"{short}:{rid}\" not found"),
            None,
        );
    };
    let (template, version) = match check_external_id(world, cluster, &rev.external_id) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let fail = world
        .faults
        .fail_rollbacks
        .get(&name)
        .or_else(|| world.faults.fail_rollbacks.get(&template))
        .cloned();
    apply(
        world,
        now,
        key,
        cluster,
        Action::Rollback,
        (
            rev.external_id.clone(),
            rev.answers.clone(),
            rev.values_yaml.clone(),
        ),
        &template,
        &version,
        format!("Rollback to {}", rev.helm_revision),
        fail,
    );
    axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT)
}

/// An app's spec from a create or upgrade body; what is missing is empty (replace semantics).
fn content_of(external_id: String, body: &Value) -> (String, Map<String, Value>, String) {
    (
        external_id,
        body["answers"].as_object().cloned().unwrap_or_default(),
        body["valuesYaml"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Starts an install, upgrade or rollback of a legacy app: the spec becomes `content`, Helm gets
/// a new revision (`description`; kept in the world's history for a rollback, as a requested
/// `--description` is), and (when it will succeed) a new apprevision is recorded.
#[allow(clippy::too_many_arguments)]
fn apply(
    world: &mut World,
    now: Instant,
    key: &(String, String),
    cluster: &str,
    action: Action,
    content: (String, Map<String, Value>, String),
    template: &str,
    version: &str,
    description: String,
    fail: Option<String>,
) {
    let kind = match action {
        Action::Install => "install",
        Action::Upgrade => "upgrade",
        Action::Rollback => "rollback",
        Action::Uninstall => "uninstall",
    };
    let requested = if action == Action::Rollback {
        description.clone()
    } else {
        String::new()
    };
    let id = format!("apprevision-{}", world.next_suffix());
    let app = world.legacy_apps.get_mut(key).expect("exists");
    let namespace = app.target_namespace.clone();
    let number = app.helm.last().map_or(1, |r| r.number + 1);
    let (external_id, answers, values_yaml) = content;
    let rev = LegacyRevision {
        id,
        external_id,
        answers,
        values_yaml,
        created_wall: SystemTime::now(),
        created_ms: app.next_created_ms(),
        helm_revision: number,
    };
    app.helm.push(LegacyHelmRevision {
        number,
        chart: template.to_owned(),
        version: version.to_owned(),
        values_yaml: rev.values_yaml.clone(),
        description,
        kind,
        fail_message: fail.clone(),
        started: now,
    });
    // Rancher records an apprevision only for a deployment that worked.
    if fail.is_none() {
        app.history.push(rev.clone());
    }
    app.current = rev;
    app.started = now;
    app.fail_message = fail;
    app.born_active = app.born_active && action == Action::Install;
    record(
        world, cluster, &namespace, &key.1, action, template, version, &requested,
    );
}

#[allow(clippy::too_many_arguments)]
fn record(
    world: &mut World,
    cluster: &str,
    ns: &str,
    release: &str,
    action: Action,
    chart: &str,
    version: &str,
    description: &str,
) {
    let counter = match action {
        Action::Install => "helm install",
        Action::Upgrade => "helm upgrade",
        Action::Rollback => "helm rollback",
        Action::Uninstall => "helm uninstall",
    };
    world.count(counter.into());
    world.history.push(HelmRecord {
        cluster: cluster.into(),
        namespace: ns.into(),
        release: release.into(),
        action,
        chart: chart.into(),
        version: version.into(),
        operation: "legacy-v3-app".into(),
        description: description.into(),
    });
}
