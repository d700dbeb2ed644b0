//! The simulator's wire behaviour, checked with a plain HTTP client: error-body shapes, auth,
//! CSRF, the chart index, Helm release rules and the control API.

use std::time::Duration;

use berth_rancher_sim::{Faults, RancherSim, SimConfig};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct T {
    sim: RancherSim,
    http: Client,
}

impl T {
    async fn new() -> Self {
        Self {
            sim: RancherSim::start(SimConfig::default()).await.unwrap(),
            http: Client::builder().user_agent("berth-test").build().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.sim.admin_token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, t) = self.call(reqwest::Method::GET, path, None).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, t) = self.call(reqwest::Method::POST, path, Some(body)).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    /// Polls until `f` accepts the JSON at `path` (bounded by count, not asserted on time).
    async fn until(&self, path: &str, f: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let (_, v) = self.get(path).await;
            if f(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition never met for {path}");
    }
}

const B: &str = "/k8s/clusters/c-m-berth001/v1";

fn install_body(ns: &str, version: &str, values: Value) -> Value {
    json!({"namespace": ns, "wait": true, "timeout": "600s", "charts": [{
        "chartName": "influxdb", "version": version, "releaseName": "influxdb", "values": values,
        "annotations": {"catalog.cattle.io/ui-source-repo-type": "cluster", "catalog.cattle.io/ui-source-repo": "stable"}}]})
}

#[tokio::test]
async fn ping_needs_no_auth_and_everything_else_does() {
    let t = T::new().await;
    let pong = t
        .http
        .get(t.url("/ping"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    let resp = t.http.get(t.url("/v3/users?me=true")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"})
    );
    let (s, me) = t.get("/v3/users?me=true").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["type"], "collection");
    assert_eq!(me["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn norman_and_steve_error_shapes() {
    let t = T::new().await;
    let (s, e) = t
        .post(
            "/v3/projects",
            json!({"type": "project", "clusterId": "c-m-berth001"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (e["baseType"].as_str(), e["status"].as_u64()),
        (Some("error"), Some(422))
    );
    assert_eq!(
        (e["code"].as_str(), e["fieldName"].as_str()),
        (Some("MissingRequired"), Some("name"))
    );

    let (s, e) = t
        .post("/v3/projects", json!({"name": "q", "clusterId": "c-m-berth001", "resourceQuota": {"limit": {"pods": "10"}}}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("MissingRequired"))
    );

    let (s, e) = t
        .get(&format!("{B}/catalog.cattle.io.clusterrepos/nope"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e.get("baseType").is_none());
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str(), e["status"].as_u64()),
        (Some("error"), Some("NotFound"), Some(404))
    );

    let (s, e) = t
        .post(
            &format!("{B}/catalog.cattle.io.clusterrepos/stable?action=explode"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an unknown action is 403");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("no such action explode"));
}

#[tokio::test]
async fn install_validations() {
    let t = T::new().await;
    let repo = format!("{B}/catalog.cattle.io.clusterrepos/stable?action=install");
    let mut body = install_body("ns1", "4.3.2", json!({}));
    body["timeout"] = json!(600);
    let (s, e) = t.post(&repo, body).await;
    assert_eq!(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a numeric timeout fails to decode"
    );
    assert_eq!(e["code"], "ServerError");
    let (s, e) = t.post(&repo, install_body("ns1", "9.9.9", json!({}))).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("no chart version found for influxdb-9.9.9"));
    let (s, _) = t
        .call(
            reqwest::Method::POST,
            &format!("{B}/catalog.cattle.io.clusterrepos/stable?action=install"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "bad JSON is a 500");

    t.sim.update_faults(|f| f.roles_never_populate = true);
    let mut body = install_body("ns1", "4.3.2", json!({}));
    body["projectId"] = json!("c-m-berth001:p-x");
    let (s, e) = t.post(&repo, body).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("roles to be populated"));
}

#[tokio::test]
async fn index_hides_unfit_versions_unless_skip_filter() {
    let t = T::new().await;
    let (_, idx) = t
        .get(&format!(
            "{B}/catalog.cattle.io.clusterrepos/stable?link=index"
        ))
        .await;
    let versions: Vec<&str> = idx["entries"]["influxdb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["4.3.2", "4.3.1"]);
    let (_, idx) = t
        .get(&format!(
            "{B}/catalog.cattle.io.clusterrepos/stable?link=index&skipFilter=true"
        ))
        .await;
    assert_eq!(
        idx["entries"]["influxdb"][0]["version"], "4.12.5",
        "newest first"
    );
    for chart in ["foundation", "certs", "dsm"] {
        assert!(
            idx["entries"][chart]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{chart} seeded"
        );
    }
    // Local cluster through /v1, type names in any case and number.
    let (s, repo) = t.get("/v1/Catalog.Cattle.IO.ClusterRepo/stable").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(repo["status"]["conditions"][0]["type"], "Downloaded");
}

#[tokio::test]
async fn helm_release_lifecycle_and_values_rules() {
    let t = T::new().await;
    let repo = |a: &str| format!("{B}/catalog.cattle.io.clusterrepos/stable?action={a}");
    let app = format!("{B}/catalog.cattle.io.apps/ns1/influxdb");
    let (s, _) = t.get(&app).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the App 404s before Helm's first revision"
    );

    let (s, out) = t
        .post(
            &repo("install"),
            install_body("ns1", "4.3.1", json!({"a": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(out["type"], "chartActionOutput");
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns1/{}",
        out["operationName"].as_str().unwrap()
    );
    let op = t
        .until(&op_path, |v| {
            v["status"]["conditions"][0]["status"] == "False"
        })
        .await;
    assert_eq!(
        op["status"]["conditions"][1],
        json!({"type": "Stalled", "status": "False", "message": ""})
    );
    assert!(op["status"]["command"][0]
        .as_str()
        .unwrap()
        .starts_with("helm install"));
    let (_, a) = t.get(&app).await;
    assert_eq!(
        (
            a["spec"]["info"]["status"].as_str(),
            a["spec"]["version"].as_u64()
        ),
        (Some("deployed"), Some(1))
    );

    // Name reuse fails in the operation.
    let (_, out) = t
        .post(
            &repo("install"),
            install_body("ns1", "4.3.1", json!({"a": 1})),
        )
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns1/{}",
        out["operationName"].as_str().unwrap()
    );
    let op = t
        .until(&op_path, |v| {
            v["status"]["conditions"][1]["status"] == "True"
        })
        .await;
    assert!(op["status"]["conditions"][1]["message"]
        .as_str()
        .unwrap()
        .contains("exit code: 1"));
    let (_, logs) = t
        .call(reqwest::Method::GET, &format!("{op_path}?link=logs"), None)
        .await;
    assert!(
        logs.contains("cannot re-use a name that is still in use"),
        "{logs}"
    );

    // Empty values reuse the old ones; non-empty replace; resetValues takes exactly what is sent.
    let upgrade = |values: Value, reset: bool| {
        let mut b = install_body("ns1", "4.3.2", values);
        b["resetValues"] = json!(reset);
        b
    };
    for (values, reset, expected) in [
        (json!({}), false, json!({"a": 1})),
        (json!({"b": 2}), false, json!({"b": 2})),
        (json!({}), true, json!({})),
    ] {
        let (_, out) = t.post(&repo("upgrade"), upgrade(values, reset)).await;
        let op_path = format!(
            "{B}/catalog.cattle.io.operations/ns1/{}",
            out["operationName"].as_str().unwrap()
        );
        t.until(&op_path, |v| {
            v["status"]["conditions"][0]["status"] == "False"
        })
        .await;
        let (_, a) = t.get(&app).await;
        assert_eq!(a["spec"]["values"], expected);
        assert_eq!(a["spec"]["chart"]["metadata"]["version"], "4.3.2");
    }
    let (_, a) = t.get(&app).await;
    assert_eq!(a["spec"]["version"], 4);

    // Uninstall: 201 + operation, then the App is gone; a missing App is 404.
    let (s, _) = t
        .post(
            &format!("{app}?action=uninstall"),
            json!({"timeout": "60s"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    t.until(&app, |v| v["code"] == "NotFound").await;
    let (s, _) = t.post(&format!("{app}?action=uninstall"), json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stuck_release_blocks_further_operations() {
    let t = T::new().await;
    t.sim.update_faults(|f| f.stuck_pending_install = true);
    let repo = |a: &str| format!("{B}/catalog.cattle.io.clusterrepos/stable?action={a}");
    let (_, out) = t
        .post(&repo("install"), install_body("ns2", "4.3.2", json!({})))
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns2/{}",
        out["operationName"].as_str().unwrap()
    );
    t.until(&op_path, |v| {
        v["status"]["conditions"][0]["status"] == "False"
    })
    .await;
    let (_, a) = t
        .get(&format!("{B}/catalog.cattle.io.apps/ns2/influxdb"))
        .await;
    assert_eq!(a["spec"]["info"]["status"], "pending-install");
    assert_eq!(a["status"]["summary"]["transitioning"], true);
    t.sim.set_faults(Faults::default());
    let (_, out) = t
        .post(
            &repo("upgrade"),
            install_body("ns2", "4.3.2", json!({"x": 1})),
        )
        .await;
    let op_path = format!(
        "{B}/catalog.cattle.io.operations/ns2/{}",
        out["operationName"].as_str().unwrap()
    );
    t.until(&op_path, |v| {
        v["status"]["conditions"][1]["status"] == "True"
    })
    .await;
    let (_, logs) = t
        .call(reqwest::Method::GET, &format!("{op_path}?link=logs"), None)
        .await;
    assert!(
        logs.contains("another operation (install/upgrade/rollback) is in progress"),
        "{logs}"
    );
}

#[tokio::test]
async fn projects_and_namespaces() {
    let t = T::new().await;
    let (s, p) = t
        .post(
            "/v3/projects",
            json!({"type": "project", "name": "dup", "clusterId": "c-m-berth001"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(p["state"], "initializing");
    let (s, _) = t
        .post(
            "/v3/projects",
            json!({"type": "project", "name": "dup", "clusterId": "c-m-berth001"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "project names are not unique");
    let (_, list) = t.get("/v3/projects?clusterId=c-m-berth001&name=dup").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let pid = p["id"].as_str().unwrap().to_owned();
    t.until(&format!("/v3/projects/{pid}"), |v| v["state"] == "active")
        .await;

    let ns = json!({"type": "namespace", "name": "unit-a", "projectId": pid});
    let (s, n) = t
        .post("/v3/clusters/c-m-berth001/namespaces", ns.clone())
        .await;
    assert_eq!(
        (s, n["state"].as_str()),
        (StatusCode::CREATED, Some("activating"))
    );
    let (s, e) = t.post("/v3/clusters/c-m-berth001/namespaces", ns).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyExists"))
    );
    let (s, n) = t
        .post(
            "/v3/clusters/c-m-berth001/namespaces/unit-a?action=move",
            json!({"projectId": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(n["projectId"], Value::Null);

    let (s, _) = t
        .call(
            reqwest::Method::DELETE,
            &format!("/v3/projects/{pid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.until(&format!("/v3/projects/{pid}"), |v| v["code"] == "NotFound")
        .await;
}

#[tokio::test]
async fn browser_user_agent_needs_csrf_on_writes() {
    let t = T::new().await;
    let browser = Client::builder()
        .user_agent("Mozilla/5.0 (X11)")
        .build()
        .unwrap();
    let resp = browser
        .post(t.url("/v3/projects"))
        .bearer_auth(t.sim.admin_token())
        .json(&json!({"name": "x", "clusterId": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["code"], "InvalidCSRFToken");
}

#[tokio::test]
async fn tunnel_down_and_scoped_keys() {
    let t = T::new().await;
    t.sim.update_faults(|f| f.tunnel_down = true);
    let (s, body) = t
        .call(
            reqwest::Method::GET,
            &format!("{B}/catalog.cattle.io.apps"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.starts_with("dial tcp"), "plain text: {body}");
    let (s, _) = t.get("/v3/clusters").await;
    assert_eq!(s, StatusCode::OK, "the management API still answers");

    let scoped = t.sim.create_token(None, Some("local"));
    let resp = t
        .http
        .get(t.url(&format!("{B}/catalog.cattle.io.apps")))
        .bearer_auth(scoped)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.text().await.unwrap().is_empty(),
        "the proxy's 401 has an empty body"
    );
}

#[tokio::test]
async fn control_api_sets_faults_and_reads_counters() {
    let t = T::new().await;
    let resp = t
        .http
        .put(t.url("/__sim/faults"))
        .json(&json!({"rate_limited": 1, "retry_after_secs": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = t
        .http
        .get(t.url("/v3/clusters"))
        .bearer_auth(t.sim.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let (s, _) = t.get("/v3/clusters").await;
    assert_eq!(s, StatusCode::OK, "the counted fault is used up");

    let counters: Value = t
        .http
        .get(t.url("/__sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["GET cluster"], 2);
    let resp = t
        .http
        .put(t.url("/__sim/faults"))
        .json(&json!({"no_such_fault": true}))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_client_error(),
        "unknown fault names are refused"
    );

    let token: Value = t
        .http
        .post(t.url("/__sim/tokens"))
        .json(&json!({"ttl_ms": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = t
        .http
        .get(t.url("/v3/users?me=true"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "an expired token");

    let resp = t
        .http
        .delete(t.url("/__sim/counters"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(t.sim.counters().is_empty());
    let history: Value = t
        .http
        .get(t.url("/__sim/history"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history, json!([]));
}

#[tokio::test]
async fn request_latency_delays_every_api_call_without_serialising_them() {
    let t = T::new().await;
    let resp = t
        .http
        .put(t.url("/__sim/faults"))
        .json(&json!({"request_latency_ms": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(t.sim.faults().request_latency_ms, 400);

    let started = std::time::Instant::now();
    let (s, _) = t.get("/v3/clusters").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the call was not delayed: {:?}",
        started.elapsed()
    );

    // Ten calls at once: served side by side (ten in a row would take 4 s).
    let started = std::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let req = t
            .http
            .get(t.url("/v3/clusters"))
            .bearer_auth(t.sim.admin_token());
        calls.spawn(async move { req.send().await.map(|r| r.status()) });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(2500),
        "the delay holds the simulator's lock: {elapsed:?}"
    );
    assert_eq!(t.sim.count("GET cluster"), 11);
}
