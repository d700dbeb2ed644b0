//! The control API under `/__sim` (no auth; a loopback dev tool): faults, timings, counters,
//! Helm history and extra tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Faults, Timings};
use crate::world::{HelmRecord, Shared};

pub async fn get_faults(State(s): State<Arc<Shared>>) -> Json<Faults> {
    Json(s.world().faults.clone())
}

pub async fn put_faults(State(s): State<Arc<Shared>>, Json(f): Json<Faults>) -> StatusCode {
    s.world().faults = f;
    StatusCode::NO_CONTENT
}

pub async fn get_timings(State(s): State<Arc<Shared>>) -> Json<Timings> {
    Json(s.world().config_timings.clone())
}

pub async fn put_timings(State(s): State<Arc<Shared>>, Json(t): Json<Timings>) -> StatusCode {
    s.world().config_timings = t;
    StatusCode::NO_CONTENT
}

pub async fn get_counters(State(s): State<Arc<Shared>>) -> Json<BTreeMap<String, u64>> {
    Json(s.world().counters.clone())
}

pub async fn delete_counters(State(s): State<Arc<Shared>>) -> StatusCode {
    s.world().counters.clear();
    StatusCode::NO_CONTENT
}

pub async fn get_history(State(s): State<Arc<Shared>>) -> Json<Vec<HelmRecord>> {
    Json(s.world().history.clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    ttl_ms: Option<u64>,
    #[serde(default)]
    cluster: Option<String>,
}

pub async fn post_token(State(s): State<Arc<Shared>>, Json(r): Json<TokenRequest>) -> Response {
    let token = s
        .world()
        .issue_token(r.ttl_ms.map(Duration::from_millis), r.cluster.as_deref());
    (StatusCode::CREATED, Json(json!({"token": token}))).into_response()
}
