//! Plain axum routes: health checks, sign-in/out, live progress and history exports; and the
//! one rule the server functions' endpoint adds (identity before argument errors).

pub mod auth;
pub mod export;
pub mod health;
pub mod progress;
pub mod server_fns;
