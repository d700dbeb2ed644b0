//! The `/__sim` control API: faults, counters, tokens, history, request latency.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::SimApi;

#[tokio::test]
async fn control_api_sets_faults_and_reads_counters() {
    let api = SimApi::new().await;
    let resp = api
        .http
        .put(api.url("/__sim/faults"))
        .json(&json!({"rate_limited": 1, "retry_after_secs": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = api
        .http
        .get(api.url("/v3/clusters"))
        .bearer_auth(api.sim.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let (s, _) = api.get("/v3/clusters").await;
    assert_eq!(s, StatusCode::OK, "the counted fault is used up");

    let counters: Value = api
        .http
        .get(api.url("/__sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["GET cluster"], 2);
    let resp = api
        .http
        .put(api.url("/__sim/faults"))
        .json(&json!({"no_such_fault": true}))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_client_error(),
        "unknown fault names are refused"
    );

    let token: Value = api
        .http
        .post(api.url("/__sim/tokens"))
        .json(&json!({"ttl_ms": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = api
        .http
        .get(api.url("/v3/users?me=true"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "an expired token");

    let resp = api
        .http
        .delete(api.url("/__sim/counters"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(api.sim.counters().is_empty());
    let history: Value = api
        .http
        .get(api.url("/__sim/history"))
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
    let api = SimApi::new().await;
    let resp = api
        .http
        .put(api.url("/__sim/faults"))
        .json(&json!({"request_latency_ms": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.sim.faults().request_latency_ms, 400);

    let started = std::time::Instant::now();
    let (s, _) = api.get("/v3/clusters").await;
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
        let req = api
            .http
            .get(api.url("/v3/clusters"))
            .bearer_auth(api.sim.admin_token());
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
    assert_eq!(api.sim.count("GET cluster"), 11);
}
