//! The request timeout: a response's head within the set time, or 503. Unlike
//! `tower_http::timeout::TimeoutLayer` it says in the log which call ran out of time and how
//! busy the database pool was then, since a pool with no free connection is the usual cause
//! of a request that waits that long.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use berth_db::PgPool;

/// What the timeout needs: how long, and the pool to describe when it fires.
#[derive(Clone)]
pub struct Timeout {
    pub after: Duration,
    pub pool: PgPool,
}

pub async fn layer(State(t): State<Timeout>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match tokio::time::timeout(t.after, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(
                %method,
                path,
                seconds = t.after.as_secs(),
                pool_connections = t.pool.size(),
                pool_idle = t.pool.num_idle(),
                "request timed out; answered 503"
            );
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
