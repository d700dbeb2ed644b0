//! Berth's server: configuration, sessions, sign-in routes, security middleware, and the
//! Leptos app with its server functions. `main.rs` only wires these together.

pub mod api;
pub mod audit;
pub mod config;
pub mod middleware;
pub mod progress;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tokens;
