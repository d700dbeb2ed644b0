//! HTTP-level tests: the real router on port 0, a fresh database per test, plain reqwest
//! clients with cookie jars. They cover what a browser cannot be trusted to enforce.

use std::collections::HashMap;

use berth_db::PgPool;
use leptos::prelude::LeptosOptions;
use reqwest::{header::LOCATION, redirect::Policy, Client, StatusCode};
use server::{config::Settings, startup::Application};
use uuid::Uuid;

struct TestApp {
    base: String,
    pool: PgPool,
}

async fn spawn(pool: PgPool, dev_login: bool) -> TestApp {
    spawn_with(pool, dev_login, |_| {}).await
}

async fn spawn_with(pool: PgPool, dev_login: bool, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut vars: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            "postgres://unused@127.0.0.1/unused".to_string(),
        ),
        ("BERTH_DEV_LOGIN", dev_login.to_string()),
        ("BERTH_SEED_DEMO", "true".to_string()),
        // Approvals enqueue runs; no worker takes them here (the engine's own tests do).
        ("BERTH_WORKER", "false".to_string()),
        (
            "BERTH_TEMPLATES",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../templates").to_string(),
        ),
    ]);
    if !dev_login {
        // Single sign-on configured instead (never reached here: discovery is lazy).
        for (k, v) in [
            ("BERTH_OIDC_ISSUER", "http://127.0.0.1:9"),
            ("BERTH_OIDC_CLIENT_ID", "berth"),
            ("BERTH_OIDC_CLIENT_SECRET", "secret"),
            (
                "BERTH_OIDC_REDIRECT_URL",
                "http://127.0.0.1:3000/auth/callback",
            ),
            ("BERTH_OIDC_ROLE_MAP", "berth-admins=admin"),
        ] {
            vars.insert(k, v.to_string());
        }
    }
    let addr = "127.0.0.1:0".parse().unwrap();
    let mut settings = Settings::from_lookup(addr, |k| vars.get(k).cloned()).unwrap();
    tweak(&mut settings);
    let options = LeptosOptions::builder()
        .output_name("berth")
        .site_root("target/site")
        .site_addr(addr)
        .build();
    let app = Application::build_with_pool(settings, options, pool.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { base, pool }
}

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    async fn user_id(&self, subject: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A client signed in as a demo user through the development sign-in.
    async fn signed_in(&self, subject: &str) -> Client {
        let client = browser();
        let id = self.user_id(subject).await;
        let res = client
            .post(format!("{}/auth/dev-login", self.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[("user_id", id.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "dev login");
        client
    }

    async fn call(&self, client: &Client, func: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client
            .post(format!("{}/api/{func}", self.base))
            .header("sec-fetch-site", "same-origin")
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn submit(&self, client: &Client, name: &str) -> Uuid {
        let res = self
            .call(
                client,
                "submit_request",
                &[
                    ("name", name),
                    ("slug", ""),
                    ("description", ""),
                    ("owner_contact", "owner@seaview.example"),
                    ("blueprint", "insight"),
                    ("size", "small"),
                ],
            )
            .await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        sqlx::query_scalar(
            "SELECT r.id FROM requests r JOIN environments e ON e.id = r.environment_id
             WHERE e.name = $1",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    async fn decide(
        &self,
        client: &Client,
        request: Uuid,
        decision: &str,
        note: &str,
    ) -> reqwest::Response {
        let id = request.to_string();
        self.call(
            client,
            "decide_request",
            &[("id", &id), ("decision", decision), ("note", note)],
        )
        .await
    }

    async fn status(&self, request: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM requests WHERE id = $1")
            .bind(request)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn health_endpoints_and_security_headers(pool: PgPool) {
    let app = spawn(pool, true).await;
    let c = browser();
    let res = c.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let res = c.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = c.get(format!("{}/login", app.base)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'nonce-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let missing = c
        .get(format!("{}/no/such/page", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_requester_cannot_approve_even_as_admin(pool: PgPool) {
    let app = spawn(pool, true).await;
    let sam = app.signed_in("sam").await; // manager + admin
    let request = app.submit(&sam, "Trucking").await;

    let res = app.decide(&sam, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("own request"));
    assert_eq!(app.status(request).await, "submitted");

    let auditor = app.signed_in("audrey").await;
    let res = app.decide(&auditor, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let ada = app.signed_in("ada").await;
    let res = app.decide(&ada, request, "reject", "").await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection needs a reason"
    );
    let res = app.decide(&ada, request, "approve", "ok").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.status(request).await, "approved");
    let again = app.decide(&ada, request, "approve", "").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn anonymous_and_cross_site_calls_are_refused(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let ada = app.signed_in("ada").await;
    let form = [
        ("id", request.to_string()),
        ("decision", "approve".into()),
        ("note", "".into()),
    ];

    // A cross-site form post carrying the admin's cookie (classic CSRF).
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let res = ada
            .post(format!("{}/api/decide_request", app.base))
            .header(header, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{header}: {value}");
    }
    assert_eq!(app.status(request).await, "submitted");

    let anonymous = browser();
    let res = app.decide(&anonymous, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .call(&anonymous, "list_environments", &[("query", "")])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Nora has no role: signed in, but refused.
    let nora = app.signed_in("nora").await;
    let res = app.call(&nora, "list_environments", &[("query", "")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Refusals and sign-ins are in the audit trail, with who and from where.
    use berth_db::audit::{recent, AuthEventKind};
    let denied = recent(&app.pool, AuthEventKind::AccessDenied, 10)
        .await
        .unwrap();
    let nora_id = app.user_id("nora").await;
    assert!(denied
        .iter()
        .any(|(user, addr, reason)| *user == Some(nora_id)
            && addr.as_deref() == Some("127.0.0.1")
            && reason.as_deref().is_some_and(|r| r.contains("NoRole"))));
    let sign_ins = recent(&app.pool, AuthEventKind::SignIn, 10).await.unwrap();
    assert_eq!(sign_ins.len(), 3, "maria, ada and nora signed in");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn invalid_input_is_reported_per_field_and_nothing_is_stored(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let res = app
        .call(
            &maria,
            "submit_request",
            &[
                ("name", "kube-system"),
                ("slug", ""),
                ("description", ""),
                ("owner_contact", "nope"),
                ("blueprint", "insight"),
                ("size", "small"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("Invalid") && body.contains("slug") && body.contains("owner_contact"),
        "{body}"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM environments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

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
    let out = c
        .post(format!("{}/auth/logout", app.base))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
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

/// Runs the real binary: with the development sign-in on a non-loopback address it must exit
/// at start-up, before touching the database, and say why.
#[test]
fn the_server_refuses_to_start_with_dev_sign_in_off_loopback() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("LEPTOS_OUTPUT_NAME", "berth")
        .env("LEPTOS_SITE_ADDR", "0.0.0.0:3999")
        .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/db")
        .env("BERTH_PUBLIC_URL", "https://berth.example.com")
        .env("BERTH_DEV_LOGIN", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BERTH_DEV_LOGIN") && stderr.contains("loopback"),
        "{stderr}"
    );
}
