//! The error-body shapes (Norman and Steve) and the install request validations.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{install_body, SimApi, B};

#[tokio::test]
async fn norman_and_steve_error_shapes() {
    let api = SimApi::new().await;
    let (s, e) = api
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

    let (s, e) = api
        .post("/v3/projects", json!({"name": "q", "clusterId": "c-m-berth001", "resourceQuota": {"limit": {"pods": "10"}}}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("MissingRequired"))
    );

    let (s, e) = api
        .get(&format!("{B}/catalog.cattle.io.clusterrepos/nope"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e.get("baseType").is_none());
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str(), e["status"].as_u64()),
        (Some("error"), Some("NotFound"), Some(404))
    );

    let (s, e) = api
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
    let api = SimApi::new().await;
    let repo = format!("{B}/catalog.cattle.io.clusterrepos/stable?action=install");
    let mut body = install_body("ns1", "4.3.2", json!({}));
    body["timeout"] = json!(600);
    let (s, e) = api.post(&repo, body).await;
    assert_eq!(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a numeric timeout fails to decode"
    );
    assert_eq!(e["code"], "ServerError");
    let (s, e) = api
        .post(&repo, install_body("ns1", "9.9.9", json!({})))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("no chart version found for influxdb-9.9.9"));
    let (s, _) = api
        .call(
            reqwest::Method::POST,
            &format!("{B}/catalog.cattle.io.clusterrepos/stable?action=install"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "bad JSON is a 500");

    api.sim.update_faults(|f| f.roles_never_populate = true);
    let mut body = install_body("ns1", "4.3.2", json!({}));
    body["projectId"] = json!("c-m-berth001:p-x");
    let (s, e) = api.post(&repo, body).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("roles to be populated"));
}
