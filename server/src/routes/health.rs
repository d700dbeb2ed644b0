//! `/healthz`: the process is up. `/readyz`: it can serve (the database answers).

use axum::{extract::State, http::StatusCode};

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if berth_db::ping(&state.services.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}
