//! The control API under `/__sim` (no auth; a loopback dev tool): faults, timings, counters,
//! Helm history, extra tokens and clusters' resources.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::config::{ClusterResources, Faults, ResourceList, Timings};
use crate::world::{HelmRecord, RevisionInfo, Shared};

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

/// `GET /__sim/releases/<ns>/<release>/history`: the release's Helm revisions, oldest first
/// (a v2 release, or the Helm release under a legacy app); 404 when there is none.
pub async fn get_release_history(
    State(s): State<Arc<Shared>>,
    Path((ns, release)): Path<(String, String)>,
) -> Response {
    let mut world = s.world();
    world.advance(std::time::Instant::now());
    match world.release_history(&ns, &release) {
        Some(h) => Json::<Vec<RevisionInfo>>(h).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no release {release:?} in namespace {ns:?}")})),
        )
            .into_response(),
    }
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

pub async fn get_cluster_resources(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match s.world().cluster(&id) {
        Some(c) => Json(c.resources.clone()).into_response(),
        None => unknown_cluster(&id),
    }
}

/// The maps to replace; an omitted one is left as it is. Values are not checked, so a test can
/// serve what a client must refuse (`{"allocatable": {"cpu": "lots"}}`, or `{}` for none).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesPatch {
    #[serde(default)]
    capacity: Option<ResourceList>,
    #[serde(default)]
    allocatable: Option<ResourceList>,
    #[serde(default)]
    requested: Option<ResourceList>,
}

impl ResourcesPatch {
    fn apply(self, r: &mut ClusterResources) {
        for (slot, new) in [
            (&mut r.capacity, self.capacity),
            (&mut r.allocatable, self.allocatable),
            (&mut r.requested, self.requested),
        ] {
            if let Some(new) = new {
                *slot = new;
            }
        }
    }
}

pub async fn patch_cluster_resources(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(patch): Json<ResourcesPatch>,
) -> Response {
    let mut world = s.world();
    let Some(c) = world.cluster_mut(&id) else {
        return unknown_cluster(&id);
    };
    patch.apply(&mut c.resources);
    Json(c.resources.clone()).into_response()
}

fn unknown_cluster(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no cluster with id {id:?}")})),
    )
        .into_response()
}

/// One Secret written through the Kubernetes proxy, as the control API shows it: `data`
/// decoded (values that are not UTF-8 are shown lossily).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredSecret {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub labels: serde_json::Map<String, serde_json::Value>,
    pub data: BTreeMap<String, String>,
    #[serde(rename = "resourceVersion")]
    pub resource_version: u64,
}

pub(crate) fn stored_secrets(s: &Shared, ns: &str) -> Vec<StoredSecret> {
    let mut world = s.world();
    world.advance(std::time::Instant::now());
    world
        .k8s_secrets
        .iter()
        .filter(|((_, n, _), _)| n == ns)
        .map(|((c, n, name), sec)| StoredSecret {
            cluster: c.clone(),
            namespace: n.clone(),
            name: name.clone(),
            kind: sec.kind.clone(),
            labels: sec.labels.clone(),
            data: sec
                .data
                .iter()
                .map(|(k, v)| {
                    let raw = super::kube::base64_decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    (k.clone(), String::from_utf8_lossy(&raw).into_owned())
                })
                .collect(),
            resource_version: sec.resource_version,
        })
        .collect()
}

/// `GET /__sim/secrets/<ns>`: the Secrets in the namespace (any cluster), values decoded.
pub async fn get_secrets(State(s): State<Arc<Shared>>, Path(ns): Path<String>) -> Response {
    Json(stored_secrets(&s, &ns)).into_response()
}

/// `GET /__sim/stored`: what the simulator keeps of releases and apps (values, answers,
/// operations' requests; see `World::stored_app_data`).
pub async fn get_stored(State(s): State<Arc<Shared>>) -> Response {
    let mut world = s.world();
    world.advance(std::time::Instant::now());
    Json(world.stored_app_data()).into_response()
}
