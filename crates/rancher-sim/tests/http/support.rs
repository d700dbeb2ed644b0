//! Shared by the wire tests: a simulator with a plain HTTP client pointed at it.

use std::time::Duration;

use berth_rancher_sim::{RancherSim, SimConfig};
use berth_testkit::eventually;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// The seeded downstream cluster's Steve API.
pub const B: &str = "/k8s/clusters/c-m-berth001/v1";

/// A running simulator and a non-browser HTTP client that calls it with the admin key.
pub struct SimApi {
    pub sim: RancherSim,
    pub http: Client,
}

impl SimApi {
    pub async fn new() -> Self {
        Self {
            sim: RancherSim::start(SimConfig::default()).await.unwrap(),
            http: Client::builder().user_agent("berth-test").build().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    pub async fn call(
        &self,
        method: Method,
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

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, t) = self.call(Method::GET, path, None).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, t) = self.call(Method::POST, path, Some(body)).await;
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }

    /// Polls until `f` accepts the JSON at `path` (bounded by count, not asserted on time).
    pub async fn until(&self, path: &str, f: impl Fn(&Value) -> bool) -> Value {
        let f = &f;
        eventually(
            &format!("condition on {path}"),
            500,
            Duration::from_millis(5),
            || async move {
                let (_, v) = self.get(path).await;
                f(&v).then_some(v)
            },
        )
        .await
    }
}

/// An install/upgrade body for the `influxdb` release from the `stable` repo.
pub fn install_body(ns: &str, version: &str, values: Value) -> Value {
    json!({"namespace": ns, "wait": true, "timeout": "600s", "charts": [{
        "chartName": "influxdb", "version": version, "releaseName": "influxdb", "values": values,
        "annotations": {"catalog.cattle.io/ui-source-repo-type": "cluster", "catalog.cattle.io/ui-source-repo": "stable"}}]})
}
