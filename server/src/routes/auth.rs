//! Signing in and out. The development sign-in picks a seeded demo user and exists only when
//! enabled (and then only on loopback addresses, see `config`).

use app::api::{guard::SESSION_USER_KEY, session::DEMO_ISSUER};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::state::AppState;

#[derive(Deserialize)]
pub struct DevLogin {
    user_id: Uuid,
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-in failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in failed; it has been logged.",
    )
        .into_response()
}

/// POST /auth/dev-login: signs in as a demo user.
pub async fn dev_login(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<DevLogin>,
) -> Response {
    if !state.services.dev_login {
        return StatusCode::NOT_FOUND.into_response();
    }
    let user = match berth_db::users::get(&state.services.pool, form.user_id).await {
        Ok(Some(u)) if u.issuer == DEMO_ISSUER => u,
        Ok(_) => return (StatusCode::FORBIDDEN, "Not a demo account.").into_response(),
        Err(e) => return internal(e),
    };
    // A fresh session id at every sign-in (no session fixation).
    if let Err(e) = session.cycle_id().await {
        return internal(e);
    }
    if let Err(e) = session.insert(SESSION_USER_KEY, user.id).await {
        return internal(e);
    }
    if let Err(e) = berth_db::users::record_sign_in(&state.services.pool, user.id).await {
        return internal(e);
    }
    tracing::info!(user_id = %user.id, "development sign-in");
    Redirect::to("/").into_response()
}

/// POST /auth/logout: ends the session.
pub async fn logout(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        return internal(e);
    }
    Redirect::to("/").into_response()
}

/// GET /auth/login: where "Sign in" leads.
pub async fn login(State(state): State<AppState>) -> Response {
    if state.services.dev_login {
        Redirect::to("/login").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Single sign-on is not configured on this server.",
        )
            .into_response()
    }
}
