//! The Rancher API surface: `/v3` (Norman), `/v1` and `/k8s/clusters/<id>/v1` (Steve).

use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::world::{
    operation_conditions, rfc3339, Action, ChartRequest, Namespace, Phase, Project, Release,
    ReleaseStatus, Repo, World, ADMIN_USER,
};

/// A parsed request.
pub struct Req {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// `http://host:port`, for links.
    pub base: String,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("failed to decode request body: {e}"))
    }
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space in query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Response shapes (contract §2)

pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The auth filter's 401: `status` is a string.
pub fn auth_401() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"}),
    )
}

/// The cluster proxy's 401 when the key has no access to the cluster: an empty body.
pub fn proxy_401() -> Response {
    StatusCode::UNAUTHORIZED.into_response()
}

/// The cluster proxy's 500 when the agent tunnel is down: plain text.
pub fn tunnel_down(cluster: &str) -> Response {
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("dial tcp 10.43.0.1:443: connect: connection refused (cluster {cluster} agent disconnected)"),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub fn norman_error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    field: Option<&str>,
) -> Response {
    let mut body = json!({
        "baseType": "error", "type": "error", "status": status.as_u16(), "code": code, "message": message.into(),
    });
    if let Some(f) = field {
        body["fieldName"] = json!(f);
    }
    json_response(status, body)
}

pub fn steve_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        json!({"type": "error", "links": {}, "status": status.as_u16(), "code": code, "message": message.into()}),
    )
}

pub fn collection(resource_type: &str, self_link: String, data: Vec<Value>) -> Value {
    json!({
        "type": "collection", "resourceType": resource_type, "links": {"self": self_link},
        "actions": {}, "pagination": {"limit": 1000, "total": data.len()}, "data": data,
    })
}

/// Lower-case, singular form of a type name (`Projects` → `project`).
pub fn norm_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    t.strip_suffix('s').map(str::to_owned).unwrap_or(t)
}

// ---------------------------------------------------------------------------------------------
// Norman /v3

pub fn v3(world: &mut World, now: Instant, req: &Req, segs: &[&str]) -> Response {
    let types: Vec<String> = segs.iter().map(|s| norm_type(s)).collect();
    let t = |i: usize| types.get(i).map(String::as_str);
    match (req.method.clone(), segs.len(), t(0)) {
        (_, 3.., Some("project")) if t(2) == Some("app") => {
            crate::legacy::apps(world, now, req, segs)
        }
        (Method::GET, 2, Some("template")) => crate::legacy::template(world, req, segs[1]),
        (Method::GET, 1, Some("user")) => {
            let user = json!({
                "id": ADMIN_USER, "type": "user", "username": "admin", "name": "Default Admin",
                "principalIds": [format!("local://{ADMIN_USER}")], "enabled": true,
                "links": {"self": format!("{}/v3/users/{ADMIN_USER}", req.base)}, "actions": {},
            });
            json_response(
                StatusCode::OK,
                collection("user", format!("{}/v3/users", req.base), vec![user]),
            )
        }
        (Method::GET, 1, Some("cluster")) => {
            let data = world
                .clusters
                .iter()
                .filter(|c| req.q("name").is_none_or(|n| n == c.name))
                .filter(|c| req.q("id").is_none_or(|n| n == c.id))
                .map(|c| cluster_json(req, &c.id, &c.name))
                .collect();
            json_response(
                StatusCode::OK,
                collection("cluster", format!("{}/v3/clusters", req.base), data),
            )
        }
        (Method::GET, 2, Some("cluster")) => match world.cluster(segs[1]) {
            Some(c) => json_response(StatusCode::OK, cluster_json(req, &c.id, &c.name)),
            None => norman_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("clusters.management.cattle.io \"{}\" not found", segs[1]),
                None,
            ),
        },
        (Method::GET, 1, Some("project")) => {
            let data = world
                .projects
                .iter()
                .filter(|p| req.q("clusterId").is_none_or(|c| c == p.cluster_id))
                .filter(|p| req.q("name").is_none_or(|n| n == p.name))
                .map(|p| project_json(world, req, p, now))
                .collect();
            json_response(
                StatusCode::OK,
                collection("project", format!("{}/v3/projects", req.base), data),
            )
        }
        (Method::POST, 1, Some("project")) => create_project(world, now, req),
        (Method::GET, 2, Some("project")) => {
            match world.projects.iter().find(|p| p.id == segs[1]) {
                Some(p) => json_response(StatusCode::OK, project_json(world, req, p, now)),
                None => project_not_found(segs[1]),
            }
        }
        (Method::DELETE, 2, Some("project")) => {
            let Some(idx) = world.projects.iter().position(|p| p.id == segs[1]) else {
                return project_not_found(segs[1]);
            };
            world.projects[idx].removing_since.get_or_insert(now);
            let p = world.projects[idx].clone();
            json_response(StatusCode::OK, project_json(world, req, &p, now))
        }
        (_, 3.., Some("cluster")) if t(2) == Some("namespace") => {
            v3_namespaces(world, now, req, segs)
        }
        (_, _, Some("user" | "cluster" | "project")) => norman_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("Method {} not supported", req.method),
            None,
        ),
        _ => norman_error(StatusCode::NOT_FOUND, "NotFound", "not found", None),
    }
}

fn project_not_found(id: &str) -> Response {
    let name = id.split(':').nth(1).unwrap_or(id);
    norman_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("projects.management.cattle.io \"{name}\" not found"),
        None,
    )
}

fn cluster_json(req: &Req, id: &str, name: &str) -> Value {
    json!({
        "id": id, "type": "cluster", "name": name, "state": "active", "transitioning": "no",
        "transitioningMessage": "",
        "links": {"self": format!("{}/v3/clusters/{id}", req.base),
                  "namespaces": format!("{}/v3/clusters/{id}/namespaces", req.base),
                  "projects": format!("{}/v3/projects?clusterId={id}", req.base)},
        "actions": {},
    })
}

fn project_json(world: &World, req: &Req, p: &Project, now: Instant) -> Value {
    let state = world.project_state(p, now);
    let self_link = format!("{}/v3/projects/{}", req.base, p.id);
    json!({
        "id": p.id, "type": "project", "baseType": "project", "name": p.name, "clusterId": p.cluster_id,
        "description": p.description, "state": state,
        "transitioning": if state == "active" { "no" } else { "yes" },
        "transitioningMessage": "",
        "created": rfc3339(p.created_wall),
        "resourceQuota": p.resource_quota, "namespaceDefaultResourceQuota": p.namespace_default_quota,
        "links": {"self": self_link, "update": self_link, "remove": self_link},
        "actions": {},
    })
}

fn create_project(world: &mut World, now: Instant, req: &Req) -> Response {
    let body = match req.body_json() {
        Ok(b) => b,
        Err(e) => {
            return norman_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidBodyContent",
                e,
                None,
            )
        }
    };
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    if name.is_empty() {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MissingRequired",
            "Field name is required",
            Some("name"),
        );
    }
    let cluster_id = body["clusterId"].as_str().unwrap_or_default().to_owned();
    if cluster_id.is_empty() {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MissingRequired",
            "Field clusterId is required",
            Some("clusterId"),
        );
    }
    if world.cluster(&cluster_id).is_none() {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidReference",
            format!("Invalid reference {cluster_id} for field clusterId"),
            Some("clusterId"),
        );
    }
    let rq = body.get("resourceQuota").filter(|v| !v.is_null()).cloned();
    let nsq = body
        .get("namespaceDefaultResourceQuota")
        .filter(|v| !v.is_null())
        .cloned();
    match (&rq, &nsq) {
        (Some(_), None) => {
            return norman_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MissingRequired",
                "field namespaceDefaultResourceQuota is required when resourceQuota is set",
                Some("namespaceDefaultResourceQuota"),
            )
        }
        (None, Some(_)) => {
            return norman_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MissingRequired",
                "field resourceQuota is required when namespaceDefaultResourceQuota is set",
                Some("resourceQuota"),
            )
        }
        _ => {}
    }
    let id = format!("{cluster_id}:p-{}", world.next_suffix());
    let p = Project {
        id,
        cluster_id,
        name,
        description: body["description"].as_str().unwrap_or_default().to_owned(),
        created: now,
        created_wall: SystemTime::now(),
        removing_since: None,
        resource_quota: rq,
        namespace_default_quota: nsq,
    };
    world.projects.push(p.clone());
    json_response(StatusCode::CREATED, project_json(world, req, &p, now))
}

fn namespace_json(world: &World, req: &Req, cluster: &str, ns: &Namespace, now: Instant) -> Value {
    let state = world.namespace_state(ns, now);
    let self_link = format!("{}/v3/clusters/{cluster}/namespaces/{}", req.base, ns.name);
    json!({
        "id": ns.name, "type": "namespace", "name": ns.name, "clusterId": cluster, "projectId": ns.project_id,
        "state": state, "transitioning": if state == "active" { "no" } else { "yes" },
        "transitioningMessage": "", "created": rfc3339(ns.created_wall),
        "links": {"self": self_link, "update": self_link, "remove": self_link},
        "actions": {"move": format!("{self_link}?action=move")},
    })
}

fn v3_namespaces(world: &mut World, now: Instant, req: &Req, segs: &[&str]) -> Response {
    let cluster = segs[1];
    if world.cluster(cluster).is_none() {
        return norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("clusters.management.cattle.io \"{cluster}\" not found"),
            None,
        );
    }
    let list_link = format!("{}/v3/clusters/{cluster}/namespaces", req.base);
    match (req.method.clone(), segs.len()) {
        (Method::GET, 3) => {
            let all = world.namespaces.get(cluster).cloned().unwrap_or_default();
            let data = all
                .values()
                .filter(|ns| req.q("name").is_none_or(|n| n == ns.name))
                .filter(|ns| {
                    req.q("projectId")
                        .is_none_or(|p| Some(p) == ns.project_id.as_deref())
                })
                .filter(|ns| !world.namespace_forbidden(ns, now))
                .map(|ns| namespace_json(world, req, cluster, ns, now))
                .collect();
            json_response(StatusCode::OK, collection("namespace", list_link, data))
        }
        (Method::POST, 3) => {
            let body = match req.body_json() {
                Ok(b) => b,
                Err(e) => {
                    return norman_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "InvalidBodyContent",
                        e,
                        None,
                    )
                }
            };
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            if name.is_empty() {
                return norman_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "MissingRequired",
                    "Field name is required",
                    Some("name"),
                );
            }
            let project_id = body["projectId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if let Some(pid) = &project_id {
                if !world
                    .projects
                    .iter()
                    .any(|p| &p.id == pid && p.cluster_id == cluster)
                {
                    return norman_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "InvalidReference",
                        format!("Invalid reference {pid} for field projectId"),
                        Some("projectId"),
                    );
                }
            }
            let map = world.namespaces.entry(cluster.into()).or_default();
            if map.contains_key(&name) {
                return norman_error(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("namespaces \"{name}\" already exists"),
                    None,
                );
            }
            let ns = Namespace {
                name: name.clone(),
                project_id,
                created: now,
                created_wall: SystemTime::now(),
            };
            map.insert(name, ns.clone());
            json_response(
                StatusCode::CREATED,
                namespace_json(world, req, cluster, &ns, now),
            )
        }
        (method, 4) => {
            let name = segs[3];
            let Some(ns) = world
                .namespaces
                .get(cluster)
                .and_then(|m| m.get(name))
                .cloned()
            else {
                return norman_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("namespaces \"{name}\" not found"),
                    None,
                );
            };
            if world.namespace_forbidden(&ns, now) {
                return norman_error(
                    StatusCode::FORBIDDEN,
                    "PermissionDenied",
                    format!("namespaces \"{name}\" is forbidden: User \"{ADMIN_USER}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"{name}\""),
                    None,
                );
            }
            match (method, req.q("action")) {
                (Method::GET, None) => json_response(
                    StatusCode::OK,
                    namespace_json(world, req, cluster, &ns, now),
                ),
                (Method::POST, Some("move")) => {
                    let body = req.body_json().unwrap_or(Value::Null);
                    let pid = body["projectId"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned);
                    if let Some(p) = &pid {
                        if !world
                            .projects
                            .iter()
                            .any(|x| &x.id == p && x.cluster_id == cluster)
                        {
                            return norman_error(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "InvalidReference",
                                format!("Invalid reference {p} for field projectId"),
                                Some("projectId"),
                            );
                        }
                    }
                    let entry = world
                        .namespaces
                        .get_mut(cluster)
                        .and_then(|m| m.get_mut(name))
                        .expect("exists");
                    entry.project_id = pid;
                    let ns = entry.clone();
                    json_response(
                        StatusCode::OK,
                        namespace_json(world, req, cluster, &ns, now),
                    )
                }
                (Method::POST, Some(other)) => norman_error(
                    StatusCode::NOT_FOUND,
                    "ActionNotAvailable",
                    format!("action {other} not available"),
                    None,
                ),
                (Method::DELETE, None) => {
                    world.namespaces.get_mut(cluster).map(|m| m.remove(name));
                    json_response(
                        StatusCode::OK,
                        namespace_json(world, req, cluster, &ns, now),
                    )
                }
                _ => norman_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "method not allowed",
                    None,
                ),
            }
        }
        _ => norman_error(StatusCode::NOT_FOUND, "NotFound", "not found", None),
    }
}

// ---------------------------------------------------------------------------------------------
// Steve /v1

const REPO_T: &str = "catalog.cattle.io.clusterrepo";
const APP_T: &str = "catalog.cattle.io.app";
const OP_T: &str = "catalog.cattle.io.operation";

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

fn find_version<'a>(
    repo: &'a Repo,
    chart: &str,
    version: &str,
) -> Option<&'a crate::world::ChartVersion> {
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
    let reset_values = body["resetValues"].as_bool().unwrap_or(false);
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
            reset_values,
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

fn app_json(base: &str, cluster: &str, ns: &str, name: &str, release: &Release) -> Value {
    let rev = release.current().expect("visible releases have a revision");
    let (error, transitioning) = match rev.status {
        ReleaseStatus::Failed => (true, false),
        ReleaseStatus::PendingInstall
        | ReleaseStatus::PendingUpgrade
        | ReleaseStatus::Uninstalling => (false, true),
        _ => (false, false),
    };
    let self_link = format!("{base}/{APP_T}s/{ns}/{name}");
    json!({
        "id": format!("{ns}/{name}"), "type": APP_T,
        "links": {"self": self_link, "remove": self_link, "update": self_link},
        "actions": {"uninstall": format!("{self_link}?action=uninstall")},
        "metadata": {"name": name, "namespace": ns,
                     "creationTimestamp": release.created_wall.map(rfc3339),
                     "state": {"name": rev.status.as_str(), "error": error, "transitioning": transitioning, "message": ""}},
        "spec": {
            "name": name, "namespace": ns, "version": rev.number,
            "info": {"status": rev.status.as_str(), "description": match rev.status {
                ReleaseStatus::Deployed => if rev.number == 1 { "Install complete" } else { "Upgrade complete" },
                ReleaseStatus::Failed => "Release failed",
                _ => "",
            }},
            "chart": {"metadata": {"name": rev.chart, "version": rev.version, "appVersion": rev.app_version,
                                   "annotations": {"catalog.cattle.io/cluster": cluster}}},
            "values": rev.values,
        },
        "status": {"summary": {"state": rev.status.as_str(), "error": error, "transitioning": transitioning},
                   "observedGeneration": rev.number},
    })
}

fn apps(
    world: &mut World,
    now: Instant,
    req: &Req,
    cluster: &str,
    base: &str,
    rest: &[&str],
) -> Response {
    let list = |ns: Option<&str>| {
        let data: Vec<Value> = world
            .releases
            .iter()
            .filter(|((c, n, _), r)| {
                c == cluster && ns.is_none_or(|x| x == n) && !r.revisions.is_empty()
            })
            .map(|((_, n, name), r)| app_json(base, cluster, n, name, r))
            .collect();
        json_response(
            StatusCode::OK,
            collection(APP_T, format!("{base}/{APP_T}s"), data),
        )
    };
    match (req.method.clone(), rest) {
        (Method::GET, []) => list(None),
        (Method::GET, [ns]) => list(Some(ns)),
        (method, [ns, name]) => {
            let Some(release) = world.visible_release(cluster, ns, name).cloned() else {
                return steve_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("apps.catalog.cattle.io \"{name}\" not found"),
                );
            };
            match (method, req.q("action")) {
                (Method::GET, None) => {
                    json_response(StatusCode::OK, app_json(base, cluster, ns, name, &release))
                }
                (Method::POST, Some("uninstall")) => {
                    let body = req.body_json().unwrap_or(Value::Null);
                    let timeout = body["timeout"].as_str().unwrap_or("600s").to_owned();
                    let rev = release.current().expect("visible");
                    let chart = ChartRequest {
                        chart: rev.chart.clone(),
                        version: rev.version.clone(),
                        app_version: rev.app_version.clone(),
                        release: (*name).to_owned(),
                        values: Value::Null,
                        reset_values: false,
                    };
                    let op = world.create_operation(
                        cluster,
                        ns,
                        Action::Uninstall,
                        vec![chart],
                        false,
                        &timeout,
                        now,
                    );
                    json_response(
                        StatusCode::CREATED,
                        json!({"type": "chartActionOutput", "operationName": op, "operationNamespace": ns}),
                    )
                }
                (Method::POST, Some(other)) => steve_error(
                    StatusCode::FORBIDDEN,
                    "PermissionDenied",
                    format!("no such action {other}"),
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

fn operation_json(base: &str, op: &crate::world::Operation) -> Value {
    let self_link = format!("{base}/{OP_T}s/{}/{}", op.namespace, op.name);
    let pod_created = op.phase != Phase::Waiting;
    let mut links = json!({"self": self_link, "remove": self_link});
    if pod_created {
        links["logs"] = json!(format!("{self_link}?link=logs"));
    }
    let conditions = operation_conditions(op);
    let (state, error, transitioning, message) = match &op.phase {
        Phase::Waiting => (
            "pending",
            false,
            true,
            "waiting to run operation".to_owned(),
        ),
        Phase::Running => ("running", false, true, "running operation".to_owned()),
        Phase::Succeeded => ("successful", false, false, String::new()),
        Phase::Failed(_) => (
            "error",
            true,
            false,
            format!("pod {}: container helm: exit code: 1", op.name),
        ),
    };
    let first = op.charts.first();
    json!({
        "id": format!("{}/{}", op.namespace, op.name), "type": OP_T, "links": links, "actions": {},
        "metadata": {"name": op.name, "namespace": op.namespace, "creationTimestamp": rfc3339(op.created_wall),
                     "state": {"name": state, "error": error, "transitioning": transitioning, "message": message}},
        "status": {
            "action": op.action, "namespace": op.namespace,
            "releaseName": first.map(|c| c.release.clone()), "chart": first.map(|c| c.chart.clone()),
            "version": first.map(|c| c.version.clone()),
            "command": op.command, "podCreated": pod_created, "podName": op.name, "podNamespace": "cattle-system",
            "conditions": conditions,
        },
    })
}

fn operations(world: &mut World, req: &Req, cluster: &str, base: &str, rest: &[&str]) -> Response {
    if req.method != Method::GET {
        return steve_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        );
    }
    let list = |ns: Option<&str>| {
        let data: Vec<Value> = world
            .operations
            .values()
            .filter(|op| op.cluster == cluster && ns.is_none_or(|n| n == op.namespace))
            .map(|op| operation_json(base, op))
            .collect();
        json_response(
            StatusCode::OK,
            collection(OP_T, format!("{base}/{OP_T}s"), data),
        )
    };
    match rest {
        [] => list(None),
        [ns] => list(Some(ns)),
        [ns, name] => {
            let key = (cluster.to_owned(), (*ns).to_owned(), (*name).to_owned());
            let Some(op) = world.operations.get(&key) else {
                return steve_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("operations.catalog.cattle.io \"{name}\" not found"),
                );
            };
            match req.q("link") {
                None => json_response(StatusCode::OK, operation_json(base, op)),
                Some("logs") if op.phase != Phase::Waiting => {
                    let mut resp = (StatusCode::OK, op.logs.clone()).into_response();
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    resp
                }
                Some(other) => steve_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("no such link {other}"),
                ),
            }
        }
        _ => steve_error(StatusCode::NOT_FOUND, "NotFound", "not found"),
    }
}
