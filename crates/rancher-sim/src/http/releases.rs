//! Steve's Helm resources: Apps (releases, with the uninstall action) and operations (with
//! kstatus conditions and the `logs` link).

use std::time::Instant;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::request::Req;
use super::respond::{collection, json_response, rfc3339, steve_error, APP_T, OP_T};
use crate::world::{
    Action, ChartRequest, Operation, Phase, Release, ReleaseStatus, Revision, World,
};

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
            "info": {"status": rev.status.as_str(), "description": rev.description},
            "chart": {"metadata": {"name": rev.chart, "version": rev.version, "appVersion": rev.app_version,
                                   "annotations": chart_annotations(cluster, rev)}},
            "values": rev.values,
        },
        "status": {"summary": {"state": rev.status.as_str(), "error": error, "transitioning": transitioning},
                   "observedGeneration": rev.number},
    })
}

/// Chart.yaml annotations: what the request injected, plus the cluster's.
fn chart_annotations(cluster: &str, rev: &Revision) -> Value {
    let mut ann = rev.annotations.clone();
    ann.insert("catalog.cattle.io/cluster".into(), json!(cluster));
    Value::Object(ann)
}

/// Helm's release secret name for a revision.
fn secret_name(release: &str, number: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{number}")
}

fn secret_json(
    base: &str,
    cluster: &str,
    ns: &str,
    release: &str,
    rev: &Revision,
    decode: bool,
) -> Value {
    let name = secret_name(release, rev.number);
    let self_link = format!("{base}/secrets/{ns}/{name}");
    let mut v = json!({
        "id": format!("{ns}/{name}"), "type": "secret", "_type": "helm.sh/release.v1",
        "links": {"self": self_link}, "actions": {},
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"owner": "helm", "name": release, "version": rev.number.to_string(),
                                "status": rev.status.as_str()},
                     "state": {"name": "active", "error": false, "transitioning": false, "message": ""}},
        "data": {},
    });
    // Steve decodes Helm's gzipped release only with `includeHelmData=true`, and drops it
    // otherwise (rancher/steve pkg/resources/formatters HandleHelmData).
    if decode {
        v["data"]["release"] = json!({
            "name": release, "namespace": ns, "version": rev.number,
            "info": {"status": rev.status.as_str(), "description": rev.description},
            "chart": {"metadata": {"name": rev.chart, "version": rev.version, "appVersion": rev.app_version,
                                   "annotations": chart_annotations(cluster, rev)},
                      "values": {}},
            "config": match &rev.values { Value::Null => json!({}), v => v.clone() },
        });
    }
    v
}

/// `secrets[/<ns>[/<name>]]`: only Helm's release secrets exist in the simulator. Lists take a
/// `labelSelector` of `key=value` pairs (`owner=helm,name=<release>`).
pub(super) fn helm_secrets(
    world: &mut World,
    req: &Req,
    cluster: &str,
    base: &str,
    rest: &[&str],
) -> Response {
    if req.method != Method::GET {
        return steve_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        );
    }
    let decode = req.q("includeHelmData") == Some("true");
    let selector: Vec<(String, String)> = req
        .q("labelSelector")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut all = Vec::new();
    for ((c, ns, release), r) in &world.releases {
        if c != cluster {
            continue;
        }
        for rev in &r.revisions {
            all.push(secret_json(base, cluster, ns, release, rev, decode));
        }
    }
    let matches = |v: &Value| {
        selector
            .iter()
            .all(|(k, want)| v["metadata"]["labels"][k.as_str()].as_str() == Some(want.as_str()))
    };
    match rest {
        [] | [_] => {
            let data = all
                .into_iter()
                .filter(|v| {
                    rest.first()
                        .is_none_or(|ns| v["metadata"]["namespace"] == *ns)
                })
                .filter(matches)
                .collect();
            json_response(
                StatusCode::OK,
                collection("secret", format!("{base}/secrets"), data),
            )
        }
        [ns, name] => match all
            .into_iter()
            .find(|v| v["metadata"]["namespace"] == *ns && v["metadata"]["name"] == *name)
        {
            Some(v) => json_response(StatusCode::OK, v),
            None => steve_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("secrets \"{name}\" not found"),
            ),
        },
        _ => steve_error(StatusCode::NOT_FOUND, "NotFound", "not found"),
    }
}

pub(super) fn apps(
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
                        description: None,
                        annotations: Default::default(),
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

fn operation_json(base: &str, op: &Operation) -> Value {
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

pub(super) fn operations(
    world: &mut World,
    req: &Req,
    cluster: &str,
    base: &str,
    rest: &[&str],
) -> Response {
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

/// kstatus-style conditions of an operation.
fn operation_conditions(op: &Operation) -> Value {
    let (reconciling, stalled, msg) = match &op.phase {
        Phase::Waiting => (true, false, "waiting to run operation".to_string()),
        Phase::Running => (true, false, "running operation".to_string()),
        Phase::Succeeded => (false, false, String::new()),
        Phase::Failed(_) => (
            false,
            true,
            format!("pod {}: container helm: exit code: 1", op.name),
        ),
    };
    let b = |v: bool| if v { "True" } else { "False" };
    json!([
        {"type": "Reconciling", "status": b(reconciling), "message": if reconciling { msg.clone() } else { String::new() }},
        {"type": "Stalled", "status": b(stalled), "message": if stalled { msg } else { String::new() }},
    ])
}
