//! Norman `/v3`: users, clusters, projects and namespaces (the legacy apps API is in `legacy`).

use std::time::{Instant, SystemTime};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::legacy;
use super::request::Req;
use super::respond::{
    collection, json_response, norm_type, norman_body, norman_error, norman_method_not_allowed,
    rfc3339,
};
use crate::world::{Cluster, Namespace, Project, World, ADMIN_USER};

/// Serves `/v3/<segs…>`; type names match in any case and number (`Projects` = `project`).
pub fn v3(world: &mut World, now: Instant, req: &Req, segs: &[&str]) -> Response {
    let types: Vec<String> = segs.iter().map(|s| norm_type(s)).collect();
    let t = |i: usize| types.get(i).map(String::as_str);
    match (req.method.clone(), segs.len(), t(0)) {
        (_, 3.., Some("project")) if t(2) == Some("app") => legacy::apps(world, now, req, segs),
        (_, 3..=4, Some("project")) if t(2) == Some("apprevision") => {
            legacy::app_revisions(world, req, segs)
        }
        (Method::GET, 2, Some("template")) => legacy::template(world, req, segs[1]),
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
                .map(|c| cluster_json(req, c))
                .collect();
            json_response(
                StatusCode::OK,
                collection("cluster", format!("{}/v3/clusters", req.base), data),
            )
        }
        (Method::GET, 2, Some("cluster")) => match world.cluster(segs[1]) {
            Some(c) => json_response(StatusCode::OK, cluster_json(req, c)),
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

fn cluster_json(req: &Req, c: &Cluster) -> Value {
    let id = &c.id;
    let mut v = json!({
        "id": id, "type": "cluster", "name": c.name, "state": "active", "transitioning": "no",
        "transitioningMessage": "",
        "links": {"self": format!("{}/v3/clusters/{id}", req.base),
                  "namespaces": format!("{}/v3/clusters/{id}/namespaces", req.base),
                  "projects": format!("{}/v3/projects?clusterId={id}", req.base)},
        "actions": {},
    });
    // Norman leaves empty fields out, so a cluster without (say) allocatable has no such key.
    let r = &c.resources;
    for (key, list) in [
        ("capacity", &r.capacity),
        ("allocatable", &r.allocatable),
        ("requested", &r.requested),
    ] {
        if !list.is_empty() {
            v[key] = json!(list);
        }
    }
    v
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
    let body = match norman_body(req) {
        Ok(b) => b,
        Err(resp) => return *resp,
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
            let body = match norman_body(req) {
                Ok(b) => b,
                Err(resp) => return *resp,
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
                removing_since: None,
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
                    // Terminating: `removing` until it is gone (then its releases go with it).
                    let entry = world
                        .namespaces
                        .get_mut(cluster)
                        .and_then(|m| m.get_mut(name))
                        .expect("exists");
                    entry.removing_since.get_or_insert(now);
                    let ns = entry.clone();
                    json_response(
                        StatusCode::OK,
                        namespace_json(world, req, cluster, &ns, now),
                    )
                }
                _ => norman_method_not_allowed(),
            }
        }
        _ => norman_error(StatusCode::NOT_FOUND, "NotFound", "not found", None),
    }
}
