//! Projects (names not unique, asynchronous activation, removal) and namespaces (create, move).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::SimApi;

#[tokio::test]
async fn projects_and_namespaces() {
    let api = SimApi::new().await;
    let (s, p) = api
        .post(
            "/v3/projects",
            json!({"type": "project", "name": "dup", "clusterId": "c-m-berth001"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(p["state"], "initializing");
    let (s, _) = api
        .post(
            "/v3/projects",
            json!({"type": "project", "name": "dup", "clusterId": "c-m-berth001"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "project names are not unique");
    let (_, list) = api
        .get("/v3/projects?clusterId=c-m-berth001&name=dup")
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let pid = p["id"].as_str().unwrap().to_owned();
    api.until(&format!("/v3/projects/{pid}"), |v| v["state"] == "active")
        .await;

    let ns = json!({"type": "namespace", "name": "unit-a", "projectId": pid});
    let (s, n) = api
        .post("/v3/clusters/c-m-berth001/namespaces", ns.clone())
        .await;
    assert_eq!(
        (s, n["state"].as_str()),
        (StatusCode::CREATED, Some("activating"))
    );
    let (s, e) = api.post("/v3/clusters/c-m-berth001/namespaces", ns).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyExists"))
    );
    let (s, n) = api
        .post(
            "/v3/clusters/c-m-berth001/namespaces/unit-a?action=move",
            json!({"projectId": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(n["projectId"], Value::Null);

    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v3/projects/{pid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    api.until(&format!("/v3/projects/{pid}"), |v| v["code"] == "NotFound")
        .await;
}
