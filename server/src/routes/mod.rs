//! Plain axum routes (not server functions): health checks and sign-in/out.

pub mod auth;
pub mod health;
