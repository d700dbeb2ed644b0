//! Steve `/v1` and `/k8s/clusters/<id>/v1`: dispatch by resource type, and cluster repos (index,
//! chart info, the install/upgrade actions). Apps and operations are in `releases`.

use std::time::Instant;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::releases::{apps, helm_secrets, operations};
use super::request::Req;
use super::respond::{collection, json_response, norm_type, steve_error, APP_T, OP_T, REPO_T};
use crate::world::{Action, ChartRequest, ChartVersion, Repo, World};

/// Serves `<prefix>/<segs…>` for `cluster` (`/v1` is the `local` cluster).
pub fn steve(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    prefix: &str,
    segs: &[&str],
) -> Response {
    let Some(first) = segs.first() else {
        return steve_error(StatusCode::NOT_FOUND, "NotFound", "schema not found");
    };
    let base = format!("{}{prefix}", req.base);
    match norm_type(first).as_str() {
        REPO_T => repos(world, now, req, cluster, &base, &segs[1..]),
        APP_T => apps(world, now, req, cluster, &base, &segs[1..]),
        "secret" => helm_secrets(world, req, cluster, &base, &segs[1..]),
        OP_T => operations(world, req, cluster, &base, &segs[1..]),
        other => steve_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("schema {other} not found"),
        ),
    }
}

fn repo_json(world: &World, base: &str, repo: &Repo) -> Value {
    let self_link = format!("{base}/{REPO_T}s/{}", repo.name);
    let (status, message) = match &world.faults.repo_download_failed {
        Some(msg) => ("False", msg.clone()),
        None => ("True", String::new()),
    };
    json!({
        "id": repo.name, "type": REPO_T,
        "links": {"self": self_link, "index": format!("{self_link}?link=index"), "info": format!("{self_link}?link=info")},
        "actions": {"install": format!("{self_link}?action=install"), "upgrade": format!("{self_link}?action=upgrade")},
        "metadata": {"name": repo.name, "state": {"name": if status == "True" { "active" } else { "error" },
                     "error": status == "False", "transitioning": false, "message": message}},
        "spec": {"url": repo.url},
        "status": {"conditions": [{"type": "Downloaded", "status": status, "message": message}]},
    })
}

fn repos(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    base: &str,
    rest: &[&str],
) -> Response {
    let all = world.repos.get(cluster).cloned().unwrap_or_default();
    match (req.method.clone(), rest) {
        (Method::GET, []) => {
            let data = all.values().map(|r| repo_json(world, base, r)).collect();
            json_response(
                StatusCode::OK,
                collection(REPO_T, format!("{base}/{REPO_T}s"), data),
            )
        }
        (method, [name]) => {
            let Some(repo) = all.get(*name) else {
                return steve_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("clusterrepos.catalog.cattle.io \"{name}\" not found"),
                );
            };
            match (method, req.q("link"), req.q("action")) {
                (Method::GET, None, None) => {
                    json_response(StatusCode::OK, repo_json(world, base, repo))
                }
                (Method::GET, Some("index"), None) => {
                    let skip = req.q("skipFilter") == Some("true");
                    let entries: Map<String, Value> = repo
                        .charts
                        .iter()
                        .map(|(chart, versions)| {
                            let list: Vec<Value> = versions
                                .iter()
                                .filter(|v| skip || v.fits)
                                .map(|v| {
                                    let mut ann = Map::new();
                                    if let Some(k) = &v.kube_version {
                                        ann.insert("catalog.cattle.io/kube-version".into(), json!(k));
                                    }
                                    json!({"name": v.name, "version": v.version, "appVersion": v.app_version,
                                           "annotations": ann, "urls": [format!("{}/{}-{}.tgz", repo.url, v.name, v.version)]})
                                })
                                .collect();
                            (chart.clone(), Value::Array(list))
                        })
                        .collect();
                    json_response(
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "entries": entries}),
                    )
                }
                (Method::GET, Some("info"), None) => {
                    let chart = req.q("chartName").unwrap_or_default();
                    let version = req.q("version").unwrap_or_default();
                    match find_version(repo, chart, version) {
                        Some(v) => json_response(
                            StatusCode::OK,
                            json!({"chart": {"name": v.name, "version": v.version, "appVersion": v.app_version, "apiVersion": "v2"},
                                   "values": {}, "readme": format!("# {}\n", v.name)}),
                        ),
                        None => steve_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "ServerError",
                            format!("no chart version found for {chart}-{version}"),
                        ),
                    }
                }
                (Method::POST, None, Some(action @ ("install" | "upgrade"))) => {
                    let action = if action == "install" {
                        Action::Install
                    } else {
                        Action::Upgrade
                    };
                    install(world, now, req, cluster, repo, action)
                }
                (Method::POST, None, Some(other)) => steve_error(
                    StatusCode::FORBIDDEN,
                    "PermissionDenied",
                    format!("no such action {other}"),
                ),
                (Method::GET, Some(other), _) => steve_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("no such link {other}"),
                ),
                _ => steve_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "method not allowed",
                ),
            }
        }
        _ => steve_error(StatusCode::NOT_FOUND, "NotFound", "not found"),
    }
}

fn find_version<'a>(repo: &'a Repo, chart: &str, version: &str) -> Option<&'a ChartVersion> {
    repo.charts
        .get(chart)?
        .iter()
        .find(|v| v.version == version)
}

fn install(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    repo: &Repo,
    action: Action,
) -> Response {
    let server_error =
        |msg: String| steve_error(StatusCode::INTERNAL_SERVER_ERROR, "ServerError", msg);
    let body = match req.body_json() {
        Ok(b) => b,
        Err(e) => return server_error(e),
    };
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => "600s".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let kind = if other.is_number() { "number" } else { "value" };
            return server_error(format!(
                "json: cannot unmarshal {kind} into Go struct field ChartInstallAction.timeout of type string"
            ));
        }
    };
    let Some(namespace) = body["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return steve_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MissingRequired",
            "namespace is required",
        );
    };
    let Some(charts) = body["charts"].as_array().filter(|c| !c.is_empty()) else {
        return steve_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MissingRequired",
            "at least one chart is required",
        );
    };
    if let Some(msg) = &world.faults.repo_download_failed {
        return server_error(format!("repo {} is not ready: {msg}", repo.name));
    }
    // Rancher's ChartUpgrade reads `resetValues` (and `description`) per chart; the upgrade
    // action's own fields (`historyMax`, `wait`, …) have no `resetValues`, so a top-level one is
    // silently dropped by the JSON decoder, as here.
    let mut requests = Vec::new();
    for c in charts {
        let chart = c["chartName"].as_str().unwrap_or_default();
        let version = c["version"].as_str().unwrap_or_default();
        let Some(v) = find_version(repo, chart, version) else {
            return server_error(format!("no chart version found for {chart}-{version}"));
        };
        let release = c["releaseName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(chart)
            .to_owned();
        requests.push(ChartRequest {
            chart: chart.to_owned(),
            version: version.to_owned(),
            app_version: v.app_version.clone(),
            release,
            values: c.get("values").cloned().unwrap_or(Value::Null),
            reset_values: action == Action::Upgrade && c["resetValues"].as_bool().unwrap_or(false),
            description: (action == Action::Upgrade)
                .then(|| c["description"].as_str().map(str::to_owned))
                .flatten()
                .filter(|d| !d.is_empty()),
            annotations: c["annotations"].as_object().cloned().unwrap_or_default(),
        });
    }
    if body["projectId"].as_str().is_some_and(|p| !p.is_empty())
        && world.faults.roles_never_populate
    {
        return server_error("failed to wait for roles to be populated".into());
    }
    world.ensure_namespace(cluster, &namespace, now);
    let wait = body["wait"].as_bool().unwrap_or(false);
    let name = world.create_operation(cluster, &namespace, action, requests, wait, &timeout, now);
    json_response(
        StatusCode::CREATED,
        json!({"type": "chartActionOutput", "operationName": name, "operationNamespace": namespace}),
    )
}
