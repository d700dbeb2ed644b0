//! Tower layers in front of the Rancher API (not the `/__sim` control API): request logging, the
//! counters tests read, the fault switches that act before a request is served, and Rancher's
//! auth filter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::request::path_segments;
use super::respond::{auth_401, norm_type, norman_error};
use crate::world::{Shared, Token};

/// The authenticated caller's API key, for the handlers (cluster-scoped keys).
#[derive(Clone)]
pub struct Caller(pub Token);

/// Logs every Rancher API request with its answer's status (`debug`).
pub async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = next.run(req).await;
    tracing::debug!(method = %method, path = %path, status = resp.status().as_u16(), "rancher-sim request");
    resp
}

/// Counts the request under its [`route_key`] and under `total`.
pub async fn count_requests(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let key = route_key(req.method(), &path_segments(req.uri().path()), &query(&req));
    {
        let mut world = shared.world();
        world.count(key);
        world.count("total".into());
    }
    next.run(req).await
}

/// A counted fault dealt to one request.
enum Injected {
    Hang(Duration),
    RateLimited(u64),
    ServerError,
}

/// Per-request latency, then the counted faults (`hang`, `rate_limited`, `server_errors`) for
/// requests matching `target`; `/ping` only gets the latency. The faults are decided under the
/// lock and acted on after it is released, so slow requests never serialise the simulator.
pub async fn inject_faults(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let is_ping = path_segments(req.uri().path()) == ["ping"];
    let target_text = format!(
        "{} {}",
        req.method(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let (latency, injected) = {
        let mut world = shared.world();
        let f = &mut world.faults;
        let latency = Duration::from_millis(f.request_latency_ms);
        let hit = f.target.is_empty() || target_text.contains(&f.target);
        let injected = if !hit || is_ping {
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
            (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout").into_response()
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
            resp
        }
        Some(Injected::ServerError) => norman_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ClusterUnavailable",
            "ClusterUnavailable 503: cluster not available",
            None,
        ),
        None => next.run(req).await,
    }
}

/// Rancher's auth filter: a known, unexpired Bearer key (else the filter's 401), and for
/// browser callers the CSRF header on writes. Hands the key on as [`Caller`].
pub async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = {
        let world = shared.world();
        let token = bearer
            .and_then(|b| world.tokens.iter().find(|t| t.key == b))
            .cloned();
        match token {
            Some(t) if !world.faults.tokens_expired && t.expires_at.is_none_or(|e| now < e) => t,
            _ => return auth_401(),
        }
    };

    // Browser callers must present the CSRF cookie/header on writes.
    let browser = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("Mozilla"));
    if browser && req.method() != Method::GET && !headers.contains_key("x-api-csrf") {
        return norman_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidCSRFToken",
            "Invalid CSRF token",
            None,
        );
    }
    req.extensions_mut().insert(Caller(token));
    next.run(req).await
}

fn query(req: &Request) -> Vec<(String, String)> {
    Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default()
}

/// Counter key for a request: method, resource kind, action and link.
fn route_key(method: &Method, segs: &[String], query: &[(String, String)]) -> String {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let kind = match segs.as_slice() {
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
        // The Kubernetes API behind the proxy: `GET k8s secret`, `PUT k8s secret`, …
        ["k8s", "clusters", _, "api", "v1", "namespaces", _, t, ..] => {
            format!("k8s {}", norm_type(t))
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
