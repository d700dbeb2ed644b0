//! Auth filter, CSRF, the cluster proxy's answers (tunnel down, cluster-scoped keys).

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::support::{SimApi, B};

#[tokio::test]
async fn ping_needs_no_auth_and_everything_else_does() {
    let api = SimApi::new().await;
    let pong = api
        .http
        .get(api.url("/ping"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    let resp = api
        .http
        .get(api.url("/v3/users?me=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"})
    );
    let (s, me) = api.get("/v3/users?me=true").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["type"], "collection");
    assert_eq!(me["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn browser_user_agent_needs_csrf_on_writes() {
    let api = SimApi::new().await;
    let browser = Client::builder()
        .user_agent("Mozilla/5.0 (X11)")
        .build()
        .unwrap();
    let resp = browser
        .post(api.url("/v3/projects"))
        .bearer_auth(api.sim.admin_token())
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
    let api = SimApi::new().await;
    api.sim.update_faults(|f| f.tunnel_down = true);
    let (s, body) = api
        .call(
            reqwest::Method::GET,
            &format!("{B}/catalog.cattle.io.apps"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.starts_with("dial tcp"), "plain text: {body}");
    let (s, _) = api.get("/v3/clusters").await;
    assert_eq!(s, StatusCode::OK, "the management API still answers");

    let scoped = api.sim.create_token(None, Some("local"));
    let resp = api
        .http
        .get(api.url(&format!("{B}/catalog.cattle.io.apps")))
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
