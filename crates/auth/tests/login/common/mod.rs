//! Test harness: the real local provider (tools/test-idp) on a free port, a small
//! cookie-keeping HTTP "browser" that fills its login form, and the steps most tests share.

#![allow(dead_code)]

mod browser;
mod idp;

use berth_auth::{CallbackParams, OidcClient, PendingLogin, SignedIn};

pub use browser::{query_param, Browser, Outcome};
pub use idp::{free_port, idp_dir, IdpOptions, TempDir, TestIdp};

pub const CLIENT_ID: &str = "berth-test";
pub const CLIENT_SECRET: &str = "berth-test-secret";
/// Nothing listens there: the tests read the redirect instead of following it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:9/";
pub const ROLE_MAP: &str = "berth-managers=manager;berth-admins=admin;berth-auditors=auditor";

/// A demo user's password, from tools/test-idp/users.json (the file the provider serves).
pub fn password(user: &str) -> String {
    berth_testkit::demo_user(user).password
}

/// Starts a provider and discovers it; returns from the test (skip) when node is missing.
macro_rules! setup {
    ($opts:expr) => {{
        let Some(idp) = $crate::common::TestIdp::start($opts).await else {
            return;
        };
        let client = berth_auth::OidcClient::discover(idp.settings())
            .await
            .expect("discovery");
        (idp, client)
    }};
    () => {
        setup!($crate::common::IdpOptions::default())
    };
}

/// Begins a login and signs in at the provider; the callback parameters and the pending login.
pub async fn callback_for(client: &OidcClient, user: &str) -> (PendingLogin, CallbackParams) {
    let (url, pending) = client.begin_login("/requests?mine=1");
    match Browser::new().sign_in(&url, user, &password(user)).await {
        Outcome::Callback(params) => (pending, params),
        Outcome::LoginRejected(status, html) => {
            panic!("login of {user} rejected ({status}):\n{html}")
        }
    }
}

pub async fn sign_in(client: &OidcClient, user: &str) -> SignedIn {
    let (pending, params) = callback_for(client, user).await;
    client
        .complete_login(&pending, &params)
        .await
        .expect("complete_login")
}
