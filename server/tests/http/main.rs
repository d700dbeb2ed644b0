//! HTTP-level tests: the real router on port 0, a fresh database per test, plain reqwest
//! clients with cookie jars. They cover what a browser cannot be trusted to enforce.
//!
//! One test binary (one link) with a module per feature; `helpers` holds what they share.

mod helpers;

mod api;
mod api_policy;
mod bad_input;
mod db_roles;
mod history;
mod lifecycle;
mod limits;
mod lists;
mod live_list;
mod plans;
mod provisioning;
mod recheck;
mod requests;
mod security;
mod sessions;
mod sign_in;
mod tokens;
mod webhooks;
