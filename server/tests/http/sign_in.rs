//! Sent to sign in and back: an anonymous visit to any page redirects to `/auth/login` with the
//! page as `return_to`; sign-in comes back to it; only paths on this site are ever followed.

use axum::{routing::get, Json, Router};
use berth_db::PgPool;
use reqwest::{header::LOCATION, StatusCode};

use crate::helpers::{browser, spawn, spawn_with};

/// What `return_to` must never send anyone to (query-encoded as a browser would send them).
const HOSTILE: &[&str] = &[
    "//evil.example",
    "//evil.example/audit",
    "/\\evil.example",
    "\\\\evil.example",
    "/a\\b",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/\t/evil.example",
    "/a\r\nLocation: https://evil.example",
    "/auth/login?return_to=//evil.example",
    "/auth/logout",
];

fn location(res: &reqwest::Response) -> &str {
    res.headers()[LOCATION].to_str().unwrap()
}

fn encode(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn anonymous_pages_redirect_to_sign_in_with_the_page_to_return_to(pool: PgPool) {
    let app = spawn(pool, true).await;
    let anon = browser();
    let env = uuid::Uuid::new_v4();
    let pages = [
        ("/".to_owned(), "%2F".to_owned()),
        (
            "/audit?status=ready&q=x".to_owned(),
            "%2Faudit%3Fstatus%3Dready%26q%3Dx".to_owned(),
        ),
        ("/requests/new".to_owned(), "%2Frequests%2Fnew".to_owned()),
        (
            format!("/environments/{env}"),
            format!("%2Fenvironments%2F{}", encode(&env.to_string())),
        ),
    ];
    for (page, back) in &pages {
        // As a browser asks for a page, and as a script without an Accept header: both redirected.
        for accept in ["text/html,application/xhtml+xml", "*/*"] {
            let res = anon
                .get(format!("{}{page}", app.base))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
            assert_eq!(
                location(&res),
                format!("/auth/login?return_to={back}"),
                "{page}"
            );
            let body = res.text().await.unwrap();
            assert!(!body.contains("alert-error"), "{page} renders an error box");
        }
    }
    // The sign-in page itself and unknown pages are not redirected.
    let res = anon
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = anon
        .get(format!("{}/no-such-page", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Signed in, the same pages render.
    let maria = app.signed_in("maria").await;
    let res = maria.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Environments"));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_development_sign_in_returns_to_the_asked_page_and_nowhere_else(pool: PgPool) {
    let app = spawn(pool, true).await;
    // Without single sign-on, /auth/login passes the page on to the sign-in page...
    let res = browser()
        .get(format!(
            "{}/auth/login?return_to=%2Faudit%3Fstatus%3Dready",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?return_to=/audit%3Fstatus%3Dready");
    let page = browser()
        .get(format!("{}{}", app.base, location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="return_to" value="/audit?status=ready""#),
        "the demo accounts' forms carry the page back"
    );
    // ... and refuses hostile ones there already.
    for hostile in HOSTILE {
        let res = browser()
            .get(format!(
                "{}/auth/login?return_to={}",
                app.base,
                encode(hostile)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), "/login", "{hostile:?}");
    }

    let ada = app.user_id("ada").await.to_string();
    let dev_login = |return_to: &str| {
        browser()
            .post(format!("{}/auth/dev-login", app.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[("user_id", ada.as_str()), ("return_to", return_to)])
            .send()
    };
    let res = dev_login("/audit?status=ready").await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/audit?status=ready");
    assert_eq!(location(&dev_login("").await.unwrap()), "/");
    for hostile in HOSTILE {
        let res = dev_login(hostile).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{hostile:?}");
        assert_eq!(location(&res), "/", "{hostile:?}");
    }

    // A page on another name that resolves to this machine (DNS rebinding) gets no sign-in.
    let res = browser()
        .post(format!("{}/auth/dev-login", app.base))
        .header("host", "rebound.evil.example")
        .header("sec-fetch-site", "same-origin")
        .form(&[("user_id", ada.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// A provider that answers discovery only: enough for `/auth/login` to start a sign-in.
async fn discovery_only_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    });
    let router = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc) }
            }),
        )
        .route(
            "/jwks",
            get(|| async { Json(serde_json::json!({ "keys": [] })) }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    issuer
}

/// The sign-in in progress as stored server-side (the session row's bytes).
async fn stored_sessions(pool: &PgPool) -> Vec<u8> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT data FROM tower_sessions.session")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.concat()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn single_sign_on_keeps_only_a_local_return_address_in_the_pending_login(pool: PgPool) {
    let issuer = discovery_only_provider().await;
    let app = spawn_with(pool.clone(), false, |s| {
        s.oidc.as_mut().unwrap().issuer_url = issuer.clone();
    })
    .await;
    let c = browser();
    let res = c
        .get(format!(
            "{}/auth/login?return_to=%2Faudit%3Fstatus%3Dready",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_provider = location(&res).to_owned();
    assert!(
        to_provider.starts_with(&format!("{issuer}/auth?")),
        "{to_provider}"
    );
    // The page to come back to stays on the server, in the login in progress: not in the
    // provider's URL, not in a cookie of its own.
    assert!(!to_provider.contains("audit"), "{to_provider}");
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1, "only the session cookie: {cookies:?}");
    assert!(!cookies[0].to_str().unwrap().contains("audit"));
    let stored = stored_sessions(&pool).await;
    let contains = |needle: &str| stored.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains("/audit?status=ready"),
        "the pending login keeps the page"
    );

    // Hostile addresses are replaced by `/` before anything is stored.
    for hostile in HOSTILE {
        let res = browser()
            .get(format!(
                "{}/auth/login?return_to={}",
                app.base,
                encode(hostile)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{hostile:?}");
        assert!(location(&res).starts_with(&format!("{issuer}/auth?")));
    }
    let stored = stored_sessions(&pool).await;
    let contains = |needle: &str| stored.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !contains("evil.example"),
        "a hostile return address was stored"
    );
    assert!(
        !contains("javascript:"),
        "a hostile return address was stored"
    );
    assert!(!contains("/a\\b"), "a hostile return address was stored");
}
