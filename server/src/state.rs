//! Shared state handed to axum routes and, as context, to Leptos.

use app::api::guard::Services;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: Services,
}
