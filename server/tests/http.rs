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

/// Reads a CSV body into rows of cells.
fn csv_rows(body: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn history_exports_are_for_auditors_and_admins(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let ada = app.signed_in("ada").await;
    let res = app
        .decide(&ada, request, "approve", "Approved for Q1.")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let env: Uuid = sqlx::query_scalar("SELECT environment_id FROM requests WHERE id = $1")
        .bind(request)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let url =
        |ext: &str, query: &str| format!("{}/environments/{env}/history.{ext}{query}", app.base);
    let get = |c: &Client, u: String| {
        let c = c.clone();
        async move { c.get(u).send().await.unwrap() }
    };

    // Anonymous: 401; a manager and a person without a role: 403.
    assert_eq!(
        get(&browser(), url("csv", "")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&maria, url("csv", "")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&maria, url("json", "")).await.status(),
        StatusCode::FORBIDDEN
    );
    let nora = app.signed_in("nora").await;
    assert_eq!(
        get(&nora, url("json", "")).await.status(),
        StatusCode::FORBIDDEN
    );

    // The auditor gets the whole history as a CSV attachment.
    let audrey = app.signed_in("audrey").await;
    let res = get(&audrey, url("csv", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"berth-trucking-history-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let rows = csv_rows(&res.text().await.unwrap());
    assert_eq!(
        rows[0],
        ["id", "at", "kind", "actor", "request_id", "details"]
    );
    // Submitted, approved (with what exactly was approved), and the run the approval planned.
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[1][2], "request.submitted");
    assert_eq!(rows[1][3], "Maria Manager");
    assert_eq!(rows[1][4], request.to_string());
    assert_eq!(rows[2][2], "request.approved");
    assert_eq!(rows[2][3], "Ada Admin");
    let details: serde_json::Value = serde_json::from_str(&rows[2][5]).unwrap();
    assert_eq!(details["note"], "Approved for Q1.");
    assert_eq!(details["spec"]["slug"], "trucking");
    assert_eq!(rows[3][2], "run.enqueued");
    assert!(rows[1][0].parse::<i64>().unwrap() < rows[2][0].parse::<i64>().unwrap());
    time::OffsetDateTime::parse(&rows[1][1], &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 time");

    // JSON, filtered by type; admins may export too.
    let res = get(&ada, url("json", "?kind=request.approved")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let events: Vec<serde_json::Value> = res.json().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "request.approved");
    assert_eq!(events[0]["actor"], "Ada Admin");
    assert_eq!(events[0]["details"]["note"], "Approved for Q1.");
    // A window that holds nothing is an empty, valid document.
    let res = get(&audrey, url("json", "?from=2000-01-01&to=2000-01-02")).await;
    assert_eq!(res.json::<Vec<serde_json::Value>>().await.unwrap().len(), 0);
    let res = get(&audrey, url("json", "?kind=requests&from=2000-01-01")).await;
    assert_eq!(res.json::<Vec<serde_json::Value>>().await.unwrap().len(), 2);

    // Bad filters are a clear 422; unknown environments a 404.
    let res = get(&audrey, url("csv", "?kind=run.%25")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("not an event type"));
    let res = get(&audrey, url("csv", "?from=yesterday")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = get(
        &audrey,
        format!("{}/environments/{}/history.csv", app.base, Uuid::nil()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Every export is in the audit trail, and so is the refused one.
    use berth_db::audit::{recent, AuthEventKind};
    let exports = recent(&app.pool, AuthEventKind::HistoryExport, 20)
        .await
        .unwrap();
    let audrey_id = app.user_id("audrey").await;
    assert!(exports
        .iter()
        .any(|(user, _, reason)| *user == Some(audrey_id)
            && reason
                .as_deref()
                .is_some_and(|r| r.contains("history.csv of trucking"))));
    let denied = recent(&app.pool, AuthEventKind::AccessDenied, 20)
        .await
        .unwrap();
    let maria_id = app.user_id("maria").await;
    assert!(denied
        .iter()
        .any(|(user, _, reason)| *user == Some(maria_id)
            && reason
                .as_deref()
                .is_some_and(|r| r.contains("ExportHistory"))));

    // The auditors' list as CSV.
    let res = get(
        &audrey,
        format!("{}/audit/environments.csv?status=approved", app.base),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rows = csv_rows(&res.text().await.unwrap());
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][1], "Trucking");
    assert_eq!(rows[1][9], "Maria Manager");
    assert_eq!(rows[1][10], "Ada Admin");
    assert_eq!(
        rows[1][15], "3",
        "event count: submitted, approved, run.enqueued"
    );
    let res = get(&maria, format!("{}/audit/environments.csv", app.base)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// The `href` of the first link with `rel="…"` in a page.
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_timeline_filters_and_pages_without_javascript(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let env: Uuid = sqlx::query_scalar("SELECT environment_id FROM requests WHERE id = $1")
        .bind(request)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // 119 engine events after the submission: 120 in all, three pages of 50.
    sqlx::query(
        "INSERT INTO events (environment_id, kind, details)
         SELECT $1, CASE WHEN n % 10 = 0 THEN 'step.failed' ELSE 'step.started' END,
                jsonb_build_object('step', 'chart:influxdb', 'attempt', n)
         FROM generate_series(1, 119) n",
    )
    .bind(env)
    .execute(&app.pool)
    .await
    .unwrap();
    let page = |c: &Client, query: String| {
        let c = c.clone();
        let url = format!("{}/environments/{env}{query}", app.base);
        async move {
            let res = c.get(&url).send().await.unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            body
        }
    };
    let count = |html: &str| html.matches("data-kind=\"").count();

    let first = page(&maria, String::new()).await;
    assert_eq!(count(&first), 50);
    assert!(first.contains("data-kind=\"request.submitted\""));
    assert!(link(&first, "prev").is_none());
    assert!(
        !first.contains("Export CSV"),
        "managers are not offered exports"
    );
    let second = page(&maria, link(&first, "next").unwrap()).await;
    assert_eq!(count(&second), 50);
    let third = page(&maria, link(&second, "next").unwrap()).await;
    assert_eq!(count(&third), 20);
    assert!(link(&third, "next").is_none());
    let back = page(&maria, link(&third, "prev").unwrap()).await;
    assert_eq!(count(&back), 50);
    assert_eq!(
        link(&back, "next"),
        link(&second, "next"),
        "earlier from the third page is the second page"
    );

    // Filtered: the eleven failures, with the filter kept in the export links.
    let audrey = app.signed_in("audrey").await;
    let errors = page(&audrey, "?kind=errors".into()).await;
    assert_eq!(count(&errors), 11);
    assert_eq!(errors.matches("data-kind=\"step.failed\"").count(), 11);
    assert!(
        errors.contains("step chart:influxdb, attempt 10"),
        "engine details summarized"
    );
    assert!(errors.contains(&format!(
        "href=\"/environments/{env}/history.csv?kind=errors\""
    )));
    assert!(errors.contains("rel=\"external\""));
    let none = page(&audrey, "?from=2000-01-01&to=2000-01-31".into()).await;
    assert_eq!(count(&none), 0);
    assert!(none.contains("No events match these filters."));
    let bad = maria
        .get(format!("{}/environments/{env}?kind=nope!", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bad.contains("not an event type"));

    // The environment list pages too (50 a page): 60 more environments make two pages.
    sqlx::query(
        "INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint, size,
                                   status, created_by)
         SELECT gen_random_uuid(), company_id, 'Unit ' || n, 'unit-' || n, owner_contact,
                blueprint, size, 'withdrawn', created_by
         FROM environments, generate_series(1, 60) n WHERE id = $1",
    )
    .bind(env)
    .execute(&app.pool)
    .await
    .unwrap();
    let list = maria.get(format!("{}/", app.base)).send().await.unwrap();
    let list = list.text().await.unwrap();
    assert_eq!(list.matches("href=\"/environments/").count(), 50);
    let next = link(&list, "next").expect("a next page");
    let list2 = maria
        .get(format!("{}/{next}", app.base))
        .send()
        .await
        .unwrap();
    let list2 = list2.text().await.unwrap();
    assert_eq!(list2.matches("href=\"/environments/").count(), 11);
    assert!(link(&list2, "next").is_none() && link(&list2, "prev").is_some());

    // The auditors' view: auditors see every environment; managers are refused.
    let audit = page(&audrey, String::new()).await;
    assert!(
        audit.contains("href=\"/audit\""),
        "auditors get the nav link"
    );
    let audit = audrey
        .get(format!("{}/audit?q=truck", app.base))
        .send()
        .await
        .unwrap();
    let audit = audit.text().await.unwrap();
    assert!(audit.contains("data-testid=\"audit-environments\""));
    assert!(audit.contains(&format!("href=\"/environments/{env}\"")));
    assert!(audit.contains(">120<"), "event count");
    let refused = maria
        .get(format!("{}/audit", app.base))
        .send()
        .await
        .unwrap();
    let refused = refused.text().await.unwrap();
    assert!(!refused.contains("audit-environments"));
    assert!(refused.contains("needs the auditor role"), "{refused}");
    assert!(
        !first.contains("href=\"/audit\""),
        "no nav link for managers"
    );
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

/// Reads from a server-sent-event response until `needle` has arrived (or 10 s pass).
async fn read_until(res: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time; got: {seen}"))
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn approval_plans_a_run_that_the_live_stream_shows_and_only_admins_operate(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let env: Uuid = sqlx::query_scalar("SELECT environment_id FROM requests WHERE id = $1")
        .bind(request)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let url = format!("{}/environments/{env}/progress", app.base);

    // Anonymous callers get no stream.
    let res = browser().get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The manager connects before the approval: the first event is the current state.
    let mut res = maria.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first = read_until(&mut res, "\n\n").await;
    assert!(first.starts_with("event: progress"), "{first}");
    assert!(first.contains(r#""run":null"#), "{first}");

    // The approval enqueues the run in the same transaction; the open stream brings it.
    let ada = app.signed_in("ada").await;
    assert_eq!(
        app.decide(&ada, request, "approve", "").await.status(),
        StatusCode::OK
    );
    let pushed = read_until(&mut res, "chart:dsm").await;
    assert!(pushed.contains(r#""status":"pending""#), "{pushed}");
    assert!(pushed.contains("influxdb 4.3.2"), "{pushed}");
    let run: Uuid = sqlx::query_scalar("SELECT id FROM runs WHERE request_id = $1")
        .bind(request)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // Only admins retry or cancel runs; a reason is required.
    let run_id = run.to_string();
    let cancel = |client: &Client, reason: &'static str| {
        let form = [
            ("run_id", run_id.as_str()),
            ("action", "cancel"),
            ("reason", reason),
        ];
        let (app, client) = (&app, client.clone());
        async move { app.call(&client, "operate_run", &form).await.status() }
    };
    // The browser drops the connection; what changes meanwhile arrives first on reconnect.
    drop(res);
    assert_eq!(cancel(&maria, "not needed").await, StatusCode::FORBIDDEN);
    assert_eq!(cancel(&ada, " ").await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        cancel(&ada, "Wrong region, will re-request.").await,
        StatusCode::OK
    );
    let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
        .bind(run)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "cancelled");
    let mut res = maria.get(&url).send().await.unwrap();
    let caught_up = read_until(&mut res, "\n\n").await;
    assert!(caught_up.contains(r#""status":"cancelled""#), "{caught_up}");
    assert!(
        caught_up.contains(r#""environment_status":"failed""#),
        "{caught_up}"
    );
}
