//! The simulator's wire behaviour, checked with a plain HTTP client: error-body shapes, auth,
//! CSRF, cluster resources, the chart index, Helm release rules and the control API. One test
//! binary; the modules share [`support`].

mod auth;
mod charts;
mod clusters;
mod control;
mod errors;
mod projects;
mod support;
