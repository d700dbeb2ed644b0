//! The simulator's HTTP surface: the control API under `/__sim`, and everything else as Rancher.
//!
//! Rancher requests pass through tower layers before they reach [`dispatch`]: request logging,
//! the request counters, injected faults and latency, then the auth filter (and CSRF check) that
//! only `/ping` skips. `dispatch` routes by path to the Norman (`v3`), Steve (`steve`,
//! `releases`) and legacy handlers, which work on the [`World`](crate::world::World) model and
//! share `request` and `respond`; none of them imports this module or another's caller.

mod control;
pub(crate) use control::stored_secrets;
pub use control::StoredSecret;
mod kube;
mod legacy;
mod middleware;
mod releases;
mod request;
mod respond;
mod steve;
mod v3;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::world::Shared;
use middleware::Caller;
use request::{path_segments, Req};
use respond::{norman_error, proxy_401, tunnel_down};

/// The simulator's routes: the control API under `/__sim` and everything else as Rancher.
pub fn router(shared: Arc<Shared>) -> Router {
    let rancher = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .fallback(dispatch.layer(from_fn_with_state(shared.clone(), middleware::authenticate)))
        // Outermost last: log → count → faults and latency → auth → handler.
        .layer(from_fn_with_state(
            shared.clone(),
            middleware::inject_faults,
        ))
        .layer(from_fn_with_state(
            shared.clone(),
            middleware::count_requests,
        ))
        .layer(from_fn(middleware::log_request));
    Router::new()
        .route(
            "/__sim/faults",
            get(control::get_faults).put(control::put_faults),
        )
        .route(
            "/__sim/timings",
            get(control::get_timings).put(control::put_timings),
        )
        .route(
            "/__sim/counters",
            get(control::get_counters).delete(control::delete_counters),
        )
        .route("/__sim/history", get(control::get_history))
        .route(
            "/__sim/releases/{ns}/{release}/history",
            get(control::get_release_history),
        )
        .route("/__sim/tokens", post(control::post_token))
        .route("/__sim/secrets/{ns}", get(control::get_secrets))
        .route("/__sim/stored", get(control::get_stored))
        .route(
            "/__sim/clusters/{id}/resources",
            get(control::get_cluster_resources).patch(control::patch_cluster_resources),
        )
        .merge(rancher)
        .with_state(shared)
}

/// Routes an authenticated Rancher API request to its resource handler.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(token)): Extension<Caller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let decoded = path_segments(path);
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let base = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let req = Req {
        method,
        query,
        body,
        base,
    };

    let now = Instant::now();
    let mut world = shared.world();
    world.advance(now);
    match segs.as_slice() {
        ["v3", rest @ ..] => v3::v3(&mut world, now, &req, rest),
        ["v1", rest @ ..] => {
            if token.cluster.as_deref().is_some_and(|c| c != "local") {
                return proxy_401();
            }
            steve::steve(&mut world, now, &req, "local", "/v1", rest)
        }
        ["k8s", "clusters", cluster, "api", "v1", "namespaces", ns, "secrets", rest @ ..] => {
            let cluster = (*cluster).to_owned();
            if let Some(refused) = cluster_proxy_refusal(&world, &token, &cluster) {
                return refused;
            }
            kube::secrets(&mut world, &req, &cluster, ns, rest)
        }
        ["k8s", "clusters", cluster, "v1", rest @ ..] => {
            let cluster = (*cluster).to_owned();
            if let Some(refused) = cluster_proxy_refusal(&world, &token, &cluster) {
                return refused;
            }
            let prefix = format!("/k8s/clusters/{cluster}/v1");
            steve::steve(&mut world, now, &req, &cluster, &prefix, rest)
        }
        _ => norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{path} not found"),
            None,
        ),
    }
}

/// Why a call through the Kubernetes proxy of `cluster` is refused before it reaches the
/// cluster, as Rancher does: a token scoped to another cluster (401), an unknown cluster (404),
/// the cluster's agent tunnel down (503). `None`: it goes through.
fn cluster_proxy_refusal(
    world: &crate::world::World,
    token: &crate::world::Token,
    cluster: &str,
) -> Option<Response> {
    if token.cluster.as_deref().is_some_and(|c| c != cluster) {
        return Some(proxy_401());
    }
    if world.cluster(cluster).is_none() {
        return Some(norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("clusters.management.cattle.io \"{cluster}\" not found"),
            None,
        ));
    }
    if world.faults.tunnel_down {
        return Some(tunnel_down(cluster));
    }
    None
}
