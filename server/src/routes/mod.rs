//! Plain axum routes (not server functions): health checks, sign-in/out, live progress and
//! history exports.

pub mod auth;
pub mod export;
pub mod health;
pub mod progress;
