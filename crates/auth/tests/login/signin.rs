//! Signing in through the real provider's login form: roles from groups (in the ID token or
//! from UserInfo), a wrong password, and logout at the provider.

use berth_auth::{GroupsSource, OidcClient};
use berth_domain::Role;
use secrecy::ExposeSecret;

use crate::common::*;

#[tokio::test]
async fn every_demo_user_gets_the_roles_of_their_groups() {
    let (idp, client) = setup!();
    let expected: &[(&str, &str, &[Role])] = &[
        ("maria", "Maria Manager", &[Role::Manager]),
        ("mark", "Mark Manager", &[Role::Manager]),
        ("ada", "Ada Admin", &[Role::Admin]),
        ("alan", "Alan Admin", &[Role::Admin]),
        ("audrey", "Audrey Auditor", &[Role::Auditor]),
        ("sam", "Sam Superuser", &[Role::Manager, Role::Admin]),
        ("nora", "Nora Nobody", &[]),
    ];
    for (user, name, roles) in expected {
        let (pending, params) = callback_for(&client, user).await;
        assert_eq!(pending.return_to, "/requests?mine=1");
        let signed_in = client
            .complete_login(&pending, &params)
            .await
            .expect("complete_login");
        assert_eq!(signed_in.issuer, idp.issuer);
        assert_eq!(signed_in.subject, *user);
        assert_eq!(signed_in.name.as_deref(), Some(*name));
        assert_eq!(
            signed_in.email.as_deref(),
            Some(format!("{user}@seaview.example").as_str())
        );
        assert_eq!(signed_in.preferred_username.as_deref(), Some(*user));
        assert_eq!(signed_in.roles, *roles, "{user}");
        assert_eq!(signed_in.groups_source, GroupsSource::IdToken);
        // The raw ID token is kept, but never printed.
        assert_eq!(signed_in.id_token.expose_secret().split('.').count(), 3);
        assert!(!format!("{signed_in:?}").contains(signed_in.id_token.expose_secret()));
    }
}

#[tokio::test]
async fn a_wrong_password_fails_visibly_and_the_form_can_be_retried() {
    let (_idp, client) = setup!();
    let (url, pending) = client.begin_login("/");
    let browser = Browser::new();
    let (status, page, _) = browser.navigate(url).await.expect("login page");
    assert_eq!(status, 200);
    match browser.submit_login(&page, "ada", &password("maria")).await {
        Outcome::LoginRejected(status, html) => {
            assert_eq!(status, 401);
            assert!(html.contains("Invalid username or password."), "{html}");
            assert!(html.contains("value=\"ada\""), "username kept: {html}");
        }
        Outcome::Callback(p) => panic!("a wrong password signed in: {p:?}"),
    }
    match browser.submit_login(&page, "nobody", "x").await {
        Outcome::LoginRejected(status, _) => assert_eq!(status, 401),
        Outcome::Callback(p) => panic!("an unknown user signed in: {p:?}"),
    }
    let Outcome::Callback(params) = browser.submit_login(&page, "ada", &password("ada")).await
    else {
        panic!("the right password was refused")
    };
    let user = client.complete_login(&pending, &params).await.unwrap();
    assert_eq!(user.roles, vec![Role::Admin]);
}

#[tokio::test]
async fn groups_come_from_userinfo_when_the_id_token_lacks_them() {
    let (_idp, client) = setup!(IdpOptions {
        groups_in_id_token: false,
        ..Default::default()
    });
    let user = sign_in(&client, "sam").await;
    assert_eq!(user.groups_source, GroupsSource::UserInfo);
    assert_eq!(user.groups, vec!["berth-managers", "berth-admins"]);
    assert_eq!(user.roles, vec![Role::Manager, Role::Admin]);
    let nora = sign_in(&client, "nora").await;
    assert_eq!(nora.groups_source, GroupsSource::UserInfo);
    assert!(nora.roles.is_empty());
}

#[tokio::test]
async fn a_groups_claim_found_nowhere_means_no_roles() {
    let Some(idp) = TestIdp::start(IdpOptions::default()).await else {
        return;
    };
    let settings = idp.settings_with(&[(berth_auth::settings::env::GROUPS_CLAIM, "berth_roles")]);
    let client = OidcClient::discover(settings).await.unwrap();
    let user = sign_in(&client, "ada").await;
    assert_eq!(user.groups_source, GroupsSource::Missing);
    assert!(user.groups.is_empty());
    assert!(user.roles.is_empty(), "no default role: {:?}", user.roles);
}

#[tokio::test]
async fn logout_ends_the_session_at_the_provider() {
    let (_idp, client) = setup!();
    let (url, pending) = client.begin_login("/");
    let browser = Browser::new();
    let Outcome::Callback(params) = browser.sign_in(&url, "ada", &password("ada")).await else {
        panic!("login failed")
    };
    let user = client.complete_login(&pending, &params).await.unwrap();

    // Same browser, new login: the provider's session signs in without a form.
    let (again, _) = client.begin_login("/");
    assert!(
        browser.navigate(again).await.is_err(),
        "SSO session reuse expected"
    );
    // ...unless Berth asks for the form (prompt=login).
    let (forced, _) = client.begin_login_with("/", true);
    assert_eq!(query_param(&forced, "prompt").as_deref(), Some("login"));
    let (status, _, html) = browser
        .navigate(forced)
        .await
        .expect("login form with prompt=login");
    assert_eq!(status, 200);
    assert!(html.contains(">Sign in</button>"));

    let end = client
        .end_session_url(Some(&user.id_token), None)
        .expect("end_session_endpoint");
    assert_eq!(query_param(&end, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some(POST_LOGOUT_URI)
    );
    assert_eq!(
        query_param(&end, "id_token_hint").as_deref(),
        Some(user.id_token.expose_secret())
    );

    // The provider's confirmation page (auto-submitted by script in a real browser).
    let (status, page, html) = browser.navigate(end).await.expect("logout page");
    assert_eq!(status, 200, "{html}");
    let xsrf = html
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("xsrf field");
    let action = page.join("/session/end/confirm").unwrap();
    let resp = browser
        .post_form(action, &[("xsrf", xsrf), ("logout", "yes")])
        .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        POST_LOGOUT_URI
    );

    // Signed out there: the next login shows the form again.
    let (again, _) = client.begin_login("/");
    let (status, _, html) = browser
        .navigate(again)
        .await
        .expect("login form after logout");
    assert_eq!(status, 200);
    assert!(html.contains(">Sign in</button>"));
}
