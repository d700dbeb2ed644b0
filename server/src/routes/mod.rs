//! Plain axum routes (not server functions): health checks, sign-in/out, live progress.

pub mod auth;
pub mod health;
pub mod progress;
