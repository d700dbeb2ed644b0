//! Signing in and out: session cycling, timeouts, the development sign-in and its demo users.

use berth_db::PgPool;
use reqwest::{header::LOCATION, Client, StatusCode};

use crate::helpers::{browser, spawn, spawn_with};

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn sign_in_cycles_the_session_and_logout_ends_it(pool: PgPool) {
    let app = spawn(pool, true).await;
    let c = browser();
    // An anonymous session exists first? tower-sessions only sets a cookie once something is
    // stored; sign in, remember the cookie, sign in again: the id must change.
    let id = app.user_id("maria").await.to_string();
    let login = |c: &Client| {
        c.post(format!("{}/auth/dev-login", app.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[("user_id", id.clone())])
            .send()
    };
    let first = login(&c).await.unwrap();
    let cookie1 = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie1.contains("HttpOnly") && cookie1.contains("SameSite=Lax"),
        "{cookie1}"
    );
    assert_eq!(first.headers()[LOCATION], "/");
    let second = login(&c).await.unwrap();
    let cookie2 = second.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(cookie1.split(';').next(), cookie2.split(';').next());

    let who = app.call(&c, "whoami", &[]).await.text().await.unwrap();
    assert!(who.contains("Maria Manager"), "{who}");
    assert_eq!(app.sign_out(&c).await.status(), StatusCode::SEE_OTHER);
    let who = app.call(&c, "whoami", &[]).await.text().await.unwrap();
    assert_eq!(who.trim(), "null", "signed out");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn sessions_end_at_the_absolute_timeout(pool: PgPool) {
    // A zero lifetime: every session is already past its absolute limit.
    let app = spawn_with(pool, true, |s| {
        s.session_absolute = std::time::Duration::ZERO
    })
    .await;
    let maria = app.signed_in("maria").await;
    let who = app.call(&maria, "whoami", &[]).await.text().await.unwrap();
    assert_eq!(who.trim(), "null", "expired session still signed in");
    let res = app
        .call(&maria, "list_environments", &[("query", "")])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_dev_sign_in_does_not_exist_unless_enabled(pool: PgPool) {
    let app = spawn(pool, false).await;
    let id = app.user_id("ada").await;
    let res = browser()
        .post(format!("{}/auth/dev-login", app.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("user_id", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app.call(&browser(), "sign_in_options", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("\"demo_users\":[]"));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_dev_sign_in_offers_the_identity_providers_demo_users(pool: PgPool) {
    let app = spawn(pool, true).await;
    let res = app.call(&browser(), "sign_in_options", &[]).await;
    let options: serde_json::Value = res.json().await.unwrap();
    let offered = options["demo_users"].as_array().unwrap();
    let people = berth_testkit::demo_users();
    assert_eq!(offered.len(), people.len());
    let role_map = berth_auth::settings::parse_role_map(server::seed::DEMO_ROLE_MAP).unwrap();
    for person in people {
        let entry = offered
            .iter()
            .find(|u| u["name"] == person.name.as_str())
            .unwrap_or_else(|| panic!("{} not offered: {offered:?}", person.login));
        assert_eq!(entry["email"], person.email.as_str());
        let mut roles: Vec<String> = person
            .groups
            .iter()
            .filter_map(|g| role_map.get(g))
            .flatten()
            .map(|r| r.as_str().to_owned())
            .collect();
        roles.sort();
        let mut offered_roles: Vec<String> =
            serde_json::from_value(entry["roles"].clone()).unwrap();
        offered_roles.sort();
        assert_eq!(offered_roles, roles, "{}", person.login);
        // And each of them signs in as that person.
        let client = app.signed_in(&person.login).await;
        let who = app.call(&client, "whoami", &[]).await.text().await.unwrap();
        assert!(who.contains(&person.name), "{who}");
    }
}
