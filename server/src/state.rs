//! Shared state handed to axum routes and, as context, to Leptos.

use std::sync::Arc;

use app::api::guard::Services;
use axum::extract::FromRef;
use berth_auth::LazyOidcClient;
use leptos::prelude::LeptosOptions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<LazyOidcClient>>,
    /// Change notifications for the live-progress streams.
    pub progress: crate::progress::ProgressHub,
    /// The per-token rate limit of `/api/v1`.
    pub api_limiter: crate::api::limit::ApiLimiter,
    /// The session store, to re-read a session during a long-lived stream.
    pub session_store: Arc<tower_sessions_sqlx_store::PostgresStore>,
    /// Downloads running per person (history and audit exports).
    pub exports: crate::routes::export::ExportSlots,
    /// The login in progress travels in this encrypted cookie (with single sign-on).
    pub login_cookie: Option<crate::routes::pending_login::PendingLoginCookie>,
    /// Logins an address may start.
    pub login_limiter: crate::routes::pending_login::LoginLimiter,
}
