//! Sign-in against the real local provider (tools/test-idp), through its login form. One test
//! binary (the provider harness is shared); one module per concern.

#[macro_use]
mod common;

mod callback;
mod discovery;
mod recheck;
mod signin;
mod tokens;
