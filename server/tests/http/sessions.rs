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
    // Single sign-on configured (the only other way: start-up refuses both at once), and the
    // demo people seeded: none of them can be picked.
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
    // The sign-in page of a server with single sign-on offers that, and no demo account.
    let page = browser()
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with single sign-on"), "{page}");
    assert!(!page.contains("/auth/dev-login"), "{page}");
    assert!(!page.contains("Ada Admin"), "{page}");
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

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_admin_ends_every_session_of_a_person(pool: PgPool) {
    use berth_db::audit::{recent, AuthEventKind};
    let app = spawn(pool, true).await;
    let (maria1, maria2) = (app.signed_in("maria").await, app.signed_in("maria").await);
    let ada = app.signed_in("ada").await;
    let maria = app.user_id("maria").await.to_string();

    // Only admins see people and end sessions.
    let res = app
        .call(&maria1, "end_sessions", &[("person", &maria)])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(&maria1, "people", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let people = app.call(&ada, "people", &[]).await.text().await.unwrap();
    let row = |list: &str| -> serde_json::Value {
        let all: Vec<serde_json::Value> = serde_json::from_str(list).unwrap();
        all.into_iter().find(|p| p["id"] == maria.as_str()).unwrap()
    };
    assert_eq!(row(&people)["open_sessions"], 2, "{people}");

    let res = app.call(&ada, "end_sessions", &[("person", &maria)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap().trim(), "2");
    // Both of her browsers are signed out at their next call; the admin is not.
    for c in [&maria1, &maria2] {
        let who = app.call(c, "whoami", &[]).await.text().await.unwrap();
        assert_eq!(who.trim(), "null");
        let res = app.call(c, "list_environments", &[("query", "")]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let who = app.call(&ada, "whoami", &[]).await.text().await.unwrap();
    assert!(who.contains("Ada Admin"), "{who}");
    let people = app.call(&ada, "people", &[]).await.text().await.unwrap();
    assert_eq!(row(&people)["open_sessions"], 0, "{people}");

    // A page sends her to sign in, and the sign-in page says (once) why she must.
    let location = |res: reqwest::Response| {
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        res.headers()["location"].to_str().unwrap().to_owned()
    };
    let go = |path: String| maria1.get(format!("{}{path}", app.base)).send();
    let to_login = location(go("/requests/new".into()).await.unwrap());
    assert!(to_login.starts_with("/auth/login?return_to="), "{to_login}");
    let page = location(go(to_login).await.unwrap());
    assert!(page.starts_with("/login?return_to="), "{page}");
    let html = app.page(&maria1, &page).await;
    assert!(
        html.contains("An administrator ended your session."),
        "{html}"
    );
    let html = app.page(&maria1, &page).await;
    assert!(!html.contains("sign-in-ended"), "said once: {html}");
    // Her own sign-out says nothing: there is nothing to explain.
    let leaving = app.signed_in("maria").await;
    app.sign_out(&leaving).await;
    let html = app.page(&leaving, "/login").await;
    assert!(
        html.contains("Sign in") && !html.contains("sign-in-ended"),
        "{html}"
    );
    let ended = recent(&app.pool, AuthEventKind::SessionsEnded, 5)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0.map(|u| u.to_string()), Some(maria.clone()));
    let reason = ended[0].2.as_deref().unwrap();
    assert!(
        reason.contains("Ada Admin") && reason.contains("2 sessions"),
        "{reason}"
    );

    // She can sign in again; over the API an admin's token ends that session too.
    let again = app.signed_in("maria").await;
    let who = app.call(&again, "whoami", &[]).await.text().await.unwrap();
    assert!(who.contains("Maria Manager"), "{who}");
    let (_, token) = crate::api::token(&app, "ada", &["read", "operate"]).await;
    let res = browser()
        .post(format!("{}/api/v1/people/{maria}/sessions/end", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["ended"], 1);
    let who = app.call(&again, "whoami", &[]).await.text().await.unwrap();
    assert_eq!(who.trim(), "null");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn expired_sessions_and_sign_ins_are_purged(pool: PgPool) {
    let app = spawn(pool.clone(), true).await;
    let maria = app.signed_in("maria").await;
    let _ada = app.signed_in("ada").await;
    // Maria's sign-in passes its lifetime and her session record its idle expiry; Ada's stay.
    let maria_id = app.user_id("maria").await;
    sqlx::query("UPDATE sign_ins SET expires_at = now() - interval '1 second' WHERE user_id = $1")
        .bind(maria_id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE tower_sessions.session SET expiry_date = now() - interval '1 second'
         WHERE id = (SELECT id FROM tower_sessions.session ORDER BY expiry_date LIMIT 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM tower_sessions.session").await,
        2
    );
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    server::sessions::purge_once(&pool, &store).await.unwrap();
    assert_eq!(
        count("SELECT count(*) FROM tower_sessions.session").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM sign_ins WHERE ended_reason = 'expired'").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM sign_ins WHERE ended_at IS NULL").await,
        1
    );
    // Ended long enough ago, a sign-in is deleted (the audit trail keeps its record).
    sqlx::query(
        "UPDATE sign_ins SET ended_at = now() - interval '8 days' WHERE ended_at IS NOT NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    server::sessions::purge_once(&pool, &store).await.unwrap();
    assert_eq!(count("SELECT count(*) FROM sign_ins").await, 1);
    let who = app.call(&maria, "whoami", &[]).await.text().await.unwrap();
    assert_eq!(who.trim(), "null");
}
