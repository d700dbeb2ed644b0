//! Clusters: the v3 object's `capacity`/`allocatable`/`requested` maps, set at start and changed
//! through `/__sim/clusters/<id>/resources`.

use berth_rancher_sim::{ClusterResources, RancherSim, SimConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::SimApi;

#[tokio::test]
async fn clusters_report_their_resources() {
    let api = SimApi::new().await;
    let (s, c) = api.get("/v3/clusters/c-m-berth001").await;
    assert_eq!(s, StatusCode::OK);
    let defaults = json!({"cpu": "64", "memory": "256Gi", "pods": "440"});
    assert_eq!(c["allocatable"], defaults);
    assert_eq!(c["capacity"], defaults);
    assert_eq!(
        c["requested"],
        json!({"cpu": "0", "memory": "0", "pods": "0"})
    );

    // The collection (what a lookup by name reads) carries the same maps.
    let (_, list) = api.get("/v3/clusters?name=berth").await;
    assert_eq!(list["data"][0]["allocatable"], defaults);
    let (_, local) = api.get("/v3/clusters/local").await;
    assert_eq!(
        local["allocatable"], defaults,
        "every cluster has resources"
    );
}

#[tokio::test]
async fn resources_are_configurable_at_start() {
    let sim = RancherSim::start(SimConfig {
        cluster_resources: ClusterResources::new("15500m", "64G"),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .user_agent("berth-test")
        .build()
        .unwrap();
    let c: Value = http
        .get(format!("{}/v3/clusters/c-m-berth001", sim.url()))
        .bearer_auth(sim.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["allocatable"]["cpu"], "15500m");
    assert_eq!(c["capacity"]["memory"], "64G");
}

#[tokio::test]
async fn control_api_changes_one_clusters_resources() {
    let api = SimApi::new().await;
    let path = api.url("/__sim/clusters/c-m-berth001/resources");
    let resp = api
        .http
        .patch(&path)
        .json(&json!({"allocatable": {"cpu": "8", "memory": "32Gi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let now: Value = resp.json().await.unwrap();
    assert_eq!(now["allocatable"], json!({"cpu": "8", "memory": "32Gi"}));
    assert_eq!(
        now["capacity"]["cpu"], "64",
        "an omitted map is left as it is"
    );

    let (_, c) = api.get("/v3/clusters/c-m-berth001").await;
    assert_eq!(c["allocatable"], json!({"cpu": "8", "memory": "32Gi"}));
    let (_, local) = api.get("/v3/clusters/local").await;
    assert_eq!(
        local["allocatable"]["cpu"], "64",
        "other clusters unchanged"
    );
    let got: Value = api
        .http
        .get(&path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["allocatable"]["memory"], "32Gi");
    assert_eq!(
        api.sim
            .cluster_resources("c-m-berth001")
            .unwrap()
            .allocatable["cpu"],
        "8"
    );

    // Any value is served as given (clients must cope); an empty map leaves the field out.
    api.http
        .patch(&path)
        .json(&json!({"allocatable": {}, "capacity": {"cpu": "lots"}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let (_, c) = api.get("/v3/clusters/c-m-berth001").await;
    assert!(c.get("allocatable").is_none(), "{c}");
    assert_eq!(c["capacity"], json!({"cpu": "lots"}));

    let resp = api
        .http
        .patch(api.url("/__sim/clusters/c-nope/resources"))
        .json(&json!({"allocatable": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = api
        .http
        .patch(&path)
        .json(&json!({"allocatible": {}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "unknown keys are refused");

    assert!(api.sim.update_cluster_resources("local", |r| r.requested =
        ClusterResources::new("2", "4Gi").allocatable));
    let (_, local) = api.get("/v3/clusters/local").await;
    assert_eq!(local["requested"]["memory"], "4Gi");
    assert!(!api.sim.update_cluster_resources("c-nope", |_| {}));
}
