//! Plain axum routes (not server functions): health checks, sign-in/out and history exports.

pub mod auth;
pub mod export;
pub mod health;
