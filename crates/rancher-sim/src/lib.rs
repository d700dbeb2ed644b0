//! A Rancher API simulator for Berth's dev stack and tests (never linked into the product).
//!
//! It reproduces `../shared/docs/rancher-contract.md`: Norman `/v3` (users, clusters, projects,
//! namespaces), Steve `/v1` and `/k8s/clusters/<id>/v1` (cluster repos, apps, operations), the
//! four error-body shapes, asynchronous readiness, and a Helm release model. Faults are switched
//! per test through [`RancherSim::set_faults`] or the control API under `/__sim/`; call counters
//! let tests prove idempotency.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = berth_rancher_sim::RancherSim::start(Default::default()).await?;
//! let (url, token) = (sim.url(), sim.admin_token().to_owned());
//! # let _ = (url, token);
//! # Ok(()) }
//! ```

mod api;
mod config;
mod legacy;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Faults, SimConfig, Timings};
pub use world::{Action, HelmRecord};

use api::{
    auth_401, norm_type, norman_error, parse_query, percent_decode, proxy_401, steve, tunnel_down,
    v3, Req,
};
use world::{Token, World};

/// State shared by the HTTP handlers and the test-side handle.
pub struct Shared {
    world: Mutex<World>,
    admin_token: String,
}

impl Shared {
    pub fn new(config: &SimConfig) -> Arc<Self> {
        Arc::new(Self {
            world: Mutex::new(World::new(config)),
            admin_token: config.token.clone(),
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock would be a simulator bug; keep serving regardless.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator. Dropping it stops the server.
pub struct RancherSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RancherSim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn bind(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(&config);
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "rancher simulator stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin API key configured at start.
    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    pub fn faults(&self) -> Faults {
        self.shared.world().faults.clone()
    }

    /// Replaces every fault switch.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.world().faults = faults;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.world().faults);
    }

    pub fn set_timings(&self, timings: Timings) {
        self.shared.world().config_timings = timings;
    }

    /// Requests received, by `"METHOD kind[ action=x][ link=y]"`, e.g.
    /// `"POST clusterrepo action=install"`, `"GET app"`, `"POST project"`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.world().counters.clone()
    }

    pub fn count(&self, key: &str) -> u64 {
        self.shared.world().counters.get(key).copied().unwrap_or(0)
    }

    pub fn reset_counters(&self) {
        self.shared.world().counters.clear();
    }

    /// Every Helm action that actually ran, in order.
    pub fn helm_history(&self) -> Vec<HelmRecord> {
        self.shared.world().history.clone()
    }

    /// Issues another API key, optionally expiring after `ttl` and scoped to one cluster.
    pub fn create_token(&self, ttl: Option<Duration>, cluster: Option<&str>) -> String {
        create_token(&self.shared, ttl, cluster)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RancherSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn create_token(shared: &Shared, ttl: Option<Duration>, cluster: Option<&str>) -> String {
    let mut world = shared.world();
    let key = format!(
        "token-{}:{}{}",
        world.next_suffix(),
        world.next_suffix(),
        world.next_suffix()
    );
    world.tokens.push(Token {
        key: key.clone(),
        expires_at: ttl.map(|t| Instant::now() + t),
        cluster: cluster.map(str::to_owned),
    });
    key
}

/// The simulator's routes: the control API under `/__sim` and everything else as Rancher.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__sim/faults", get(get_faults).put(put_faults))
        .route("/__sim/timings", get(get_timings).put(put_timings))
        .route("/__sim/counters", get(get_counters).delete(delete_counters))
        .route("/__sim/history", get(get_history))
        .route("/__sim/tokens", post(post_token))
        .fallback(rancher)
        .with_state(shared)
}

/// Serves until `shutdown` resolves (for the `rancher-sim` binary).
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(Shared::new(&config)))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Json<Faults> {
    Json(s.world().faults.clone())
}

async fn put_faults(State(s): State<Arc<Shared>>, Json(f): Json<Faults>) -> StatusCode {
    s.world().faults = f;
    StatusCode::NO_CONTENT
}

async fn get_timings(State(s): State<Arc<Shared>>) -> Json<Timings> {
    Json(s.world().config_timings.clone())
}

async fn put_timings(State(s): State<Arc<Shared>>, Json(t): Json<Timings>) -> StatusCode {
    s.world().config_timings = t;
    StatusCode::NO_CONTENT
}

async fn get_counters(State(s): State<Arc<Shared>>) -> Json<BTreeMap<String, u64>> {
    Json(s.world().counters.clone())
}

async fn delete_counters(State(s): State<Arc<Shared>>) -> StatusCode {
    s.world().counters.clear();
    StatusCode::NO_CONTENT
}

async fn get_history(State(s): State<Arc<Shared>>) -> Json<Vec<HelmRecord>> {
    Json(s.world().history.clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    ttl_ms: Option<u64>,
    #[serde(default)]
    cluster: Option<String>,
}

async fn post_token(State(s): State<Arc<Shared>>, Json(r): Json<TokenRequest>) -> Response {
    let token = create_token(
        &s,
        r.ttl_ms.map(Duration::from_millis),
        r.cluster.as_deref(),
    );
    (StatusCode::CREATED, Json(json!({"token": token}))).into_response()
}

/// Counter key for a request: method, resource kind, action and link.
fn route_key(method: &Method, segs: &[&str], query: &[(String, String)]) -> String {
    let kind = match segs {
        ["ping"] => "ping".to_owned(),
        ["v3", rest @ ..] => rest
            .iter()
            .step_by(2)
            .next_back()
            .map(|t| norm_type(t))
            .unwrap_or_else(|| "v3".into()),
        ["v1", t, ..] | ["k8s", "clusters", _, "v1", t, ..] => {
            let t = norm_type(t);
            t.strip_prefix("catalog.cattle.io.")
                .map(str::to_owned)
                .unwrap_or(t)
        }
        _ => "other".to_owned(),
    };
    let mut key = format!("{method} {kind}");
    for q in ["action", "link"] {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == q) {
            key.push_str(&format!(" {q}={v}"));
        }
    }
    key
}

async fn rancher(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (m, p) = (method.clone(), uri.path().to_owned());
    let resp = rancher_inner(shared, method, uri, headers, body).await;
    tracing::debug!(method = %m, path = %p, status = resp.status().as_u16(), "rancher-sim request");
    resp
}

async fn rancher_inner(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = parse_query(uri.query().unwrap_or(""));
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let key = route_key(&method, &segs, &query);
    let target_text = format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );

    // Counted faults, decided under the lock, acted on after it is released.
    enum Injected {
        Hang(Duration),
        RateLimited(u64),
        ServerError,
    }
    let (latency, injected) = {
        let mut world = shared.world();
        world.count(key.clone());
        world.count("total".into());
        let f = &mut world.faults;
        let latency = Duration::from_millis(f.request_latency_ms);
        let hit = f.target.is_empty() || target_text.contains(&f.target);
        let injected = if !hit || segs == ["ping"] {
            None
        } else if f.hang > 0 {
            f.hang -= 1;
            Some(Injected::Hang(Duration::from_millis(f.hang_ms)))
        } else if f.rate_limited > 0 {
            f.rate_limited -= 1;
            Some(Injected::RateLimited(f.retry_after_secs))
        } else if f.server_errors > 0 {
            f.server_errors -= 1;
            Some(Injected::ServerError)
        } else {
            None
        };
        (latency, injected)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match injected {
        Some(Injected::Hang(d)) => {
            tokio::time::sleep(d).await;
            return (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout").into_response();
        }
        Some(Injected::RateLimited(secs)) => {
            let mut resp = norman_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "rate limit exceeded",
                None,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return resp;
        }
        Some(Injected::ServerError) => {
            return norman_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ClusterUnavailable",
                "ClusterUnavailable 503: cluster not available",
                None,
            );
        }
        None => {}
    }

    if segs == ["ping"] {
        return "pong".into_response();
    }

    let now = Instant::now();
    let mut world = shared.world();
    world.advance(now);

    // Auth filter.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = bearer
        .and_then(|b| world.tokens.iter().find(|t| t.key == b))
        .cloned();
    let Some(token) = token else {
        return auth_401();
    };
    if world.faults.tokens_expired || token.expires_at.is_some_and(|e| now >= e) {
        return auth_401();
    }

    // Browser callers must present the CSRF cookie/header on writes.
    let browser = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("Mozilla"));
    if browser && method != Method::GET && !headers.contains_key("x-api-csrf") {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidCSRFToken",
            "Invalid CSRF token",
            None,
        );
    }

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

    match segs.as_slice() {
        ["v3", rest @ ..] => v3(&mut world, now, &req, rest),
        ["v1", rest @ ..] => {
            if token.cluster.as_deref().is_some_and(|c| c != "local") {
                return proxy_401();
            }
            steve(&mut world, now, &req, "local", "/v1", rest)
        }
        ["k8s", "clusters", cluster, "v1", rest @ ..] => {
            let cluster = (*cluster).to_owned();
            if token.cluster.as_deref().is_some_and(|c| c != cluster) {
                return proxy_401();
            }
            if world.cluster(&cluster).is_none() {
                return norman_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("clusters.management.cattle.io \"{cluster}\" not found"),
                    None,
                );
            }
            if world.faults.tunnel_down {
                return tunnel_down(&cluster);
            }
            let prefix = format!("/k8s/clusters/{cluster}/v1");
            steve(&mut world, now, &req, &cluster, &prefix, rest)
        }
        _ => norman_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{path} not found"),
            None,
        ),
    }
}
