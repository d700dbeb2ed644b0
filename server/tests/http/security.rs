//! Security headers, health checks, CSRF, refusals and their audit trail, and a start-up that
//! refuses an unsafe configuration.

use berth_db::PgPool;
use berth_domain::RequestStatus;
use reqwest::StatusCode;

use crate::helpers::{browser, spawn};

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
    let missing_csp = missing.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(missing_csp.contains("'nonce-"), "{missing_csp}");
}

/// Pages rendered while files are being served keep their own policy and status, and files get
/// the strict one: a page's headers must never move to another response.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn pages_keep_their_policy_while_files_are_served(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let calls = (0..300).map(|i| {
        let (c, base) = (maria.clone(), app.base.clone());
        let path = match i % 4 {
            0 => "/",
            1 => "/no/such/page",
            2 => "/favicon.ico",
            _ => "/pkg/berth.css",
        };
        tokio::spawn(async move {
            let res = c.get(format!("{base}{path}")).send().await.unwrap();
            let csp = res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            (path, res.status(), csp)
        })
    });
    for call in futures_util::future::join_all(calls).await {
        let (path, status, csp) = call.unwrap();
        match path {
            "/" => assert!(
                status == StatusCode::OK && csp.contains("'nonce-"),
                "{path}: {status} {csp}"
            ),
            "/no/such/page" => assert!(
                status == StatusCode::NOT_FOUND && csp.contains("'nonce-"),
                "{path}: {status} {csp}"
            ),
            _ => assert!(
                status == StatusCode::OK && csp.starts_with("default-src 'none'"),
                "{path}: {status} {csp}"
            ),
        }
    }
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
    assert_eq!(app.status(request).await, RequestStatus::Submitted);

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

/// Refusals the core makes against a record (deciding one's own request, withdrawing someone
/// else's) are in the audit trail like the policy's, with who, from where and what.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn refused_decisions_and_withdrawals_are_audited(pool: PgPool) {
    use berth_db::audit::{recent, AuthEventKind};
    let app = spawn(pool, true).await;
    let sam = app.signed_in("sam").await;
    let request = app.submit(&sam, "Trucking").await;
    // Sam is an admin too, but never decides his own request.
    let res = app.decide(&sam, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Maria may not withdraw Sam's request.
    let maria = app.signed_in("maria").await;
    let res = app
        .call(&maria, "withdraw_request", &[("id", &request.to_string())])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.status(request).await, RequestStatus::Submitted);

    let denied = recent(&app.pool, AuthEventKind::AccessDenied, 10)
        .await
        .unwrap();
    let refused = |who: uuid::Uuid, what: String| {
        denied.iter().any(|(user, addr, reason)| {
            *user == Some(who)
                && addr.as_deref() == Some("127.0.0.1")
                && reason.as_deref().is_some_and(|r| r.starts_with(&what))
        })
    };
    assert!(
        refused(
            app.user_id("sam").await,
            format!("decide request {request}")
        ),
        "{denied:?}"
    );
    assert!(
        refused(
            app.user_id("maria").await,
            format!("withdraw request {request}")
        ),
        "{denied:?}"
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

/// Single sign-on and the development sign-in on one server: it does not start, and says to
/// pick one (a demo account would be a way around the company's identity provider).
#[test]
fn the_server_refuses_to_start_with_dev_sign_in_and_single_sign_on() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("LEPTOS_OUTPUT_NAME", "berth")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:3999")
        .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/db")
        .env("BERTH_WORKER", "false")
        .env("BERTH_DEV_LOGIN", "true")
        .env("BERTH_OIDC_ISSUER", "http://127.0.0.1:4444")
        .env("BERTH_OIDC_CLIENT_ID", "berth-local")
        .env("BERTH_OIDC_CLIENT_SECRET", "berth-local-secret")
        .env(
            "BERTH_OIDC_REDIRECT_URL",
            "http://127.0.0.1:3999/auth/callback",
        )
        .env("BERTH_OIDC_ROLE_MAP", "berth-admins=admin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BERTH_DEV_LOGIN") && stderr.contains("pick one"),
        "{stderr}"
    );
    assert!(!stderr.contains("berth-local-secret"), "{stderr}");
}

/// Every server function, called with arguments that do not parse (ids that are not ids, a
/// flag that is not a bool, a page number past any integer, required fields missing): never a
/// 500, never the deserializer's words; 401 before sign-in, 400 after.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn malformed_arguments_are_refused_cleanly_after_the_caller_is_known(pool: PgPool) {
    let app = spawn(pool, true).await;
    let anonymous = browser();
    let ada = app.signed_in("ada").await;
    let malformed = [
        ("id", "new"),
        ("account", "new"),
        ("token", "new"),
        ("environment_id", "new"),
        ("request_id", "new"),
        ("run_id", "new"),
        ("delivery_id", "new"),
        ("disabled", "maybe"),
        ("query[page]", "99999999999999999999999"),
    ];
    let mut paths: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    paths.sort_unstable();
    assert!(paths.len() >= 30, "server functions found: {paths:?}");

    let mut refused = Vec::new();
    for path in &paths {
        let post = |client: &reqwest::Client| {
            client
                .post(format!("{}{path}", app.base))
                .header("sec-fetch-site", "same-origin")
                .header("accept", "application/json")
                .form(&malformed)
                .send()
        };
        let res = post(&anonymous).await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            status.is_success() || status == StatusCode::UNAUTHORIZED,
            "{path} anonymous: {status} {body}"
        );

        let res = post(&ada).await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(!status.is_server_error(), "{path}: {status} {body}");
        assert!(
            !body.contains("expected") && !body.contains("invalid"),
            "{path} leaks the deserializer's message: {body}"
        );
        if status == StatusCode::BAD_REQUEST {
            assert!(
                body.contains(app::error::ARGUMENTS_REFUSED),
                "{path}: {body}"
            );
            refused.push(*path);
        }
    }
    // Only the functions that take no arguments run (and answer as usual).
    let took_no_arguments = paths.len() - refused.len();
    assert!(
        took_no_arguments <= 6,
        "{took_no_arguments} functions accepted malformed arguments; refused: {refused:?}"
    );
}

/// Behind a trusted proxy the sign-in audit trail records the client's address from
/// `X-Forwarded-For`; a caller that is not a trusted proxy cannot name an address. (The login
/// limit per client: `sign_in.rs`.)
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_trusted_proxy_names_the_client(pool: PgPool) {
    use server::middleware::client_addr::TrustedProxies;
    let behind = crate::helpers::spawn_with(pool.clone(), true, |s| {
        s.trusted_proxies = TrustedProxies::parse("127.0.0.1, ::1").unwrap()
    })
    .await;
    let direct = spawn(pool.clone(), true).await;
    let maria = behind.user_id("maria").await;
    let last_sign_in_from = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT source_addr FROM auth_events WHERE kind = 'sign_in' ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    for (app, expected) in [(&behind, "203.0.113.7"), (&direct, "127.0.0.1")] {
        let res = browser()
            .post(format!("{}/auth/dev-login", app.base))
            .header("sec-fetch-site", "same-origin")
            // What the client wrote itself, then what the proxy appended.
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .form(&[("user_id", maria.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(last_sign_in_from().await.as_deref(), Some(expected));
    }
}
