//! The Kubernetes API behind Rancher's cluster proxy, as far as Berth uses it: Secrets in a
//! namespace (`/k8s/clusters/<id>/api/v1/namespaces/<ns>/secrets[/<name>]`: list, get, create,
//! replace, delete). Errors are Kubernetes `Status` objects. What clients send is stored as sent
//! (base64 `data`, with `stringData` folded in as Kubernetes does), for tests to inspect.

use std::time::SystemTime;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::request::Req;
use super::respond::{json_response, rfc3339};
use crate::world::{KubeSecret, World};

/// A Kubernetes `Status` error body.
pub fn kube_status(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message.into(), "reason": reason, "code": status.as_u16()}),
    )
}

fn secret_json(ns: &str, name: &str, s: &KubeSecret) -> Value {
    json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "labels": s.labels,
                     "resourceVersion": s.resource_version.to_string(),
                     "creationTimestamp": rfc3339(s.created_wall)},
        "type": s.kind, "data": s.data,
    })
}

/// Checks a Secret body and folds `stringData` into base64 `data`.
fn parse_secret(
    req: &Req,
    ns: &str,
) -> Result<(String, KubeSecret, Option<String>), Box<Response>> {
    let bad = |m: String| Box::new(kube_status(StatusCode::BAD_REQUEST, "BadRequest", m));
    let body = req.body_json().map_err(bad)?;
    if body["kind"].as_str().is_some_and(|k| k != "Secret") {
        return Err(bad(format!("kind {:?} is not Secret", body["kind"])));
    }
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        return Err(Box::new(kube_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "Secret \"\" is invalid: metadata.name: Required value: name or generateName is required",
        )));
    }
    if let Some(other) = body["metadata"]["namespace"].as_str() {
        if other != ns {
            return Err(bad(
                "the namespace of the provided object does not match the namespace sent on the \
                 request"
                    .to_owned(),
            ));
        }
    }
    let mut data = Map::new();
    for (k, v) in body["data"].as_object().into_iter().flatten() {
        let Some(s) = v.as_str() else {
            return Err(bad(format!("data[{k}] is not a string")));
        };
        if !is_base64(s) {
            return Err(bad(format!("illegal base64 data in data[{k}]")));
        }
        data.insert(k.clone(), Value::String(s.to_owned()));
    }
    for (k, v) in body["stringData"].as_object().into_iter().flatten() {
        let s = v.as_str().unwrap_or_default();
        data.insert(k.clone(), Value::String(base64_encode(s.as_bytes())));
    }
    let kind = body["type"].as_str().unwrap_or("Opaque").to_owned();
    if kind == "kubernetes.io/dockerconfigjson" && !data.contains_key(".dockerconfigjson") {
        return Err(Box::new(kube_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("Secret \"{name}\" is invalid: data[.dockerconfigjson]: Required value"),
        )));
    }
    let labels = body["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let rv = body["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    Ok((
        name,
        KubeSecret {
            kind,
            labels,
            data,
            resource_version: 0,
            created_wall: SystemTime::now(),
        },
        rv,
    ))
}

pub fn secrets(world: &mut World, req: &Req, cluster: &str, ns: &str, rest: &[&str]) -> Response {
    let exists = world
        .namespaces
        .get(cluster)
        .and_then(|m| m.get(ns))
        .is_some_and(|n| n.removing_since.is_none());
    let key = |name: &str| (cluster.to_owned(), ns.to_owned(), name.to_owned());
    let not_found = |name: &str| {
        kube_status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("secrets \"{name}\" not found"),
        )
    };
    if !exists && req.method != Method::GET {
        return kube_status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
        );
    }
    match (req.method.clone(), rest) {
        (Method::GET, []) => {
            let items: Vec<Value> = world
                .k8s_secrets
                .iter()
                .filter(|((c, n, _), _)| c == cluster && n == ns)
                .map(|((_, _, name), s)| secret_json(ns, name, s))
                .collect();
            json_response(
                StatusCode::OK,
                json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": items}),
            )
        }
        (Method::GET, [name]) => match world.k8s_secrets.get(&key(name)) {
            Some(s) => json_response(StatusCode::OK, secret_json(ns, name, s)),
            None => not_found(name),
        },
        (Method::POST, []) => {
            let (name, mut secret, _) = match parse_secret(req, ns) {
                Ok(v) => v,
                Err(resp) => return *resp,
            };
            if world.k8s_secrets.contains_key(&key(&name)) {
                return kube_status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("secrets \"{name}\" already exists"),
                );
            }
            secret.resource_version = world.next_resource_version();
            let answer = secret_json(ns, &name, &secret);
            world.k8s_secrets.insert(key(&name), secret);
            json_response(StatusCode::CREATED, answer)
        }
        (Method::PUT, [name]) => {
            let (body_name, mut secret, rv) = match parse_secret(req, ns) {
                Ok(v) => v,
                Err(resp) => return *resp,
            };
            if body_name != *name {
                return kube_status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the name of the object does not match the name on the URL",
                );
            }
            let Some(current) = world.k8s_secrets.get(&key(name)) else {
                return not_found(name);
            };
            if rv
                .as_deref()
                .is_some_and(|rv| rv != current.resource_version.to_string())
            {
                return kube_status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on secrets \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            if current.kind != secret.kind {
                return kube_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("Secret \"{name}\" is invalid: type: Invalid value: \"{}\": field is immutable", secret.kind),
                );
            }
            secret.created_wall = current.created_wall;
            secret.resource_version = world.next_resource_version();
            let answer = secret_json(ns, name, &secret);
            world.k8s_secrets.insert(key(name), secret);
            json_response(StatusCode::OK, answer)
        }
        (Method::DELETE, [name]) => match world.k8s_secrets.remove(&key(name)) {
            Some(_) => json_response(
                StatusCode::OK,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
                       "details": {"name": name, "kind": "secrets"}}),
            ),
            None => not_found(name),
        },
        _ => kube_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if c == b'=' {
                if i < 2 {
                    return None;
                }
                pad += 1;
                0
            } else {
                if pad > 0 {
                    return None;
                }
                ALPHABET.iter().position(|&a| a == c)? as u32
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

fn is_base64(s: &str) -> bool {
    base64_decode(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "robot:pull-pass",
            "a/b+c\u{e9}",
        ] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{s:?} → {e}");
        }
        assert_eq!(base64_encode(b"robot:pull"), "cm9ib3Q6cHVsbA==");
        assert!(base64_decode("abc").is_none());
        assert!(base64_decode("a=bc").is_none());
    }
}
