//! Plain axum routes: health checks, sign-in/out, live progress and history exports; and the
//! one rule the server functions' endpoint adds (identity before argument errors).

pub mod auth;
pub mod export;
pub mod health;
pub mod pending_login;
pub mod progress;
pub mod server_fns;

/// An [`app::error::AppError`] as a plain-text response with its status (the plain routes'
/// refusals: a browser shows the text).
pub(crate) fn refuse(e: app::error::AppError) -> axum::response::Response {
    use axum::{http::StatusCode, response::IntoResponse};
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, e.to_string()).into_response()
}
