//! One module per page.

pub mod audit;
pub mod change;
pub mod environment;
pub mod environments;
pub mod history;
pub mod login;
pub mod new_request;
pub mod not_found;
pub mod people;
pub mod plan;
pub mod provisioning;
pub mod request;
pub mod service_accounts;
pub mod tokens;
pub mod webhooks;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

/// The `:id` route parameter as a UUID (None when malformed).
pub(crate) fn id_param() -> Memo<Option<Uuid>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
}

/// Loads what belongs to the page's id, or answers "not found" for an address without one.
pub(crate) async fn for_id<T, F>(
    id: Option<Uuid>,
    load: impl FnOnce(Uuid) -> F,
) -> Result<T, crate::error::AppError>
where
    F: std::future::Future<Output = Result<T, crate::error::AppError>>,
{
    match id {
        Some(id) => load(id).await,
        None => Err(crate::error::AppError::NotFound),
    }
}
