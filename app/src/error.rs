//! The one application error that crosses the wire: typed, with an HTTP status, and with
//! internal details logged on the server instead of being sent to the browser.

use serde::{Deserialize, Serialize};
use server_fn_error::*;

mod server_fn_error {
    pub use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The call itself could not be read (a malformed or missing argument): 400, with a fixed
    /// message — the deserializer's own text is logged, never sent.
    #[error("{0}")]
    BadRequest(String),
    /// Form fields refused, each named (the form shows each message by its field).
    #[error("Check the form: {}", .0.0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" "))]
    Fields(berth_domain::SpecErrors),
    /// The caller has too much running at once (downloads, live streams): 429.
    #[error("{0}")]
    TooMany(String),
    #[error("Something went wrong on our side. It has been logged; please try again.")]
    Internal,
    /// Raised by the server-function machinery itself (network, encoding, …).
    #[error("Could not reach Berth: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    /// Decoded from text like every response (see [`crate::api::codec`]).
    type Encoder = crate::api::codec::JsonText;

    /// On the server, an argument that does not parse is the caller's fault (400, and the
    /// server layer answers 401 instead when nobody is signed in); everything else the
    /// machinery raises is a transport failure.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        #[cfg(feature = "ssr")]
        if let ServerFnErrorErr::Args(detail)
        | ServerFnErrorErr::MissingArg(detail)
        | ServerFnErrorErr::Deserialization(detail) = &value
        {
            tracing::debug!(%detail, "server function arguments refused");
            let refused = AppError::BadRequest(ARGUMENTS_REFUSED.into());
            if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::BAD_REQUEST);
            }
            return refused;
        }
        AppError::Transport(value.to_string())
    }
}

/// What a caller whose arguments did not parse is told.
pub const ARGUMENTS_REFUSED: &str =
    "The call's arguments could not be read: check every field is present and well formed.";

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::BadRequest(_) => 400,
            AppError::NotFound => 404,
            AppError::Conflict(_) => 409,
            AppError::Invalid(_) | AppError::Fields(_) => 422,
            AppError::TooMany(_) => 429,
            AppError::Internal | AppError::Transport(_) => 500,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<berth_domain::Denied> for AppError {
    fn from(d: berth_domain::Denied) -> Self {
        match d {
            berth_domain::Denied::NotSignedIn => AppError::Unauthorized(d.to_string()),
            _ => AppError::Forbidden(d.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<berth_db::DbError> for AppError {
    fn from(e: berth_db::DbError) -> Self {
        use berth_db::DbError;
        use berth_domain::TransitionError;
        match e {
            DbError::NotFound => AppError::NotFound,
            DbError::Invalid(errors) => AppError::Fields(errors),
            DbError::Taken { message, .. } | DbError::Conflict(message) => {
                AppError::Conflict(message)
            }
            DbError::Transition(TransitionError::Denied(d)) => d.into(),
            DbError::Transition(TransitionError::InvalidInput(m)) => AppError::Invalid(m),
            DbError::Transition(t @ TransitionError::NotSubmitted(_)) => {
                AppError::Conflict(t.to_string())
            }
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, cause = ?std::error::Error::source(&other), "storage failure");
                AppError::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<berth_runs::EngineError> for AppError {
    fn from(e: berth_runs::EngineError) -> Self {
        use berth_runs::EngineError;
        match e {
            EngineError::Db(e) => e.into(),
            EngineError::Denied(d) => d.into(),
            EngineError::NotFound(_) => AppError::NotFound,
            EngineError::Conflict(m) => AppError::Conflict(m),
            EngineError::Invalid(m) => AppError::Invalid(m),
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, cause = ?std::error::Error::source(&other), "engine failure");
                AppError::Internal
            }
        }
    }
}
