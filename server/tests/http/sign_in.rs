//! Sent to sign in and back: an anonymous visit to any page redirects to `/auth/login` with the
//! page as `return_to`; sign-in comes back to it; only paths on this site are ever followed.

use axum::Router;
use berth_db::PgPool;
use reqwest::{header::LOCATION, StatusCode};

use server::routes::pending_login::{PendingLoginCookie, LOGIN_BURST};

use crate::helpers::{browser, fake_provider, spawn, spawn_with};

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

/// How many session records the database holds.
async fn stored_sessions(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A server with single sign-on at a provider that answers discovery only, and the cookie
/// reader its client secret gives.
async fn sso_app(pool: PgPool) -> (crate::helpers::TestApp, String, PendingLoginCookie) {
    sso_app_with(pool, |_| {}).await
}

async fn sso_app_with(
    pool: PgPool,
    tweak: impl FnOnce(&mut server::config::Settings),
) -> (crate::helpers::TestApp, String, PendingLoginCookie) {
    // A provider that answers discovery only: enough for `/auth/login` to start a sign-in.
    let issuer = fake_provider(Router::new()).await;
    let secret = std::sync::Arc::new(std::sync::Mutex::new(None));
    let app = spawn_with(pool, false, {
        let secret = secret.clone();
        let issuer = issuer.clone();
        move |s| {
            let oidc = s.oidc.as_mut().unwrap();
            oidc.issuer_url = issuer.clone();
            *secret.lock().unwrap() = Some(oidc.client_secret.clone());
            tweak(s);
        }
    })
    .await;
    let secret = secret.lock().unwrap().clone().unwrap();
    (app, issuer, PendingLoginCookie::new(&secret, false))
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn single_sign_on_keeps_only_a_local_return_address_in_the_pending_login(pool: PgPool) {
    let (app, issuer, cookie) = sso_app(pool.clone()).await;
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
    // The page to come back to travels with the login in progress, encrypted: not in the
    // provider's URL, not readable in the cookie, and no session record is written for an
    // anonymous visitor.
    assert!(!to_provider.contains("audit"), "{to_provider}");
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies.len(),
        1,
        "only the pending-login cookie: {cookies:?}"
    );
    let set = cookies[0].to_str().unwrap();
    assert!(set.starts_with("berth.login="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Max-Age=600"),
        "{set}"
    );
    assert!(!set.contains("audit"), "{set}");
    assert_eq!(
        stored_sessions(&pool).await,
        0,
        "a session record per anonymous hit"
    );
    let sent = |set: &str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("cookie", set.split(';').next().unwrap().parse().unwrap());
        h
    };
    let pending = cookie.read(&sent(set)).expect("the cookie decrypts");
    assert_eq!(pending.return_to, "/audit?status=ready");
    // A cookie changed by one byte is not a login in progress.
    let tampered = set.replacen("berth.login=", "berth.login=A", 1);
    assert!(cookie.read(&sent(&tampered)).is_none());

    // Hostile addresses are replaced by `/` before anything is kept.
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
        let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        let pending = cookie.read(&sent(&set)).expect("the cookie decrypts");
        assert_eq!(pending.return_to, "/", "{hostile:?}");
    }
    assert_eq!(stored_sessions(&pool).await, 0);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn starting_sign_ins_is_rate_limited_per_address(pool: PgPool) {
    let (app, _issuer, _) = sso_app(pool).await;
    let mut limited = None;
    for n in 0..=LOGIN_BURST {
        let res = browser()
            .get(format!("{}/auth/login", app.base))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((n, res.headers()["retry-after"].to_str().unwrap().to_owned()));
            break;
        }
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
    let (n, retry) = limited.expect("the burst was never limited");
    assert!(n >= LOGIN_BURST - 1, "limited after {n}");
    assert!(retry.parse::<u64>().unwrap() >= 1, "{retry}");
    // A caller that is not a trusted proxy cannot name another address to get a new burst.
    let res = browser()
        .get(format!("{}/auth/login", app.base))
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Behind a trusted proxy every client has its own burst: the limit counts the address the
/// proxy forwards, not the proxy's.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn behind_a_trusted_proxy_each_client_has_its_own_allowance(pool: PgPool) {
    let (app, _issuer, _) = sso_app_with(pool, |s| {
        s.trusted_proxies =
            server::middleware::client_addr::TrustedProxies::parse("127.0.0.1, ::1").unwrap()
    })
    .await;
    let start = |from: &'static str| {
        browser()
            .get(format!("{}/auth/login", app.base))
            .header("x-forwarded-for", from)
            .send()
    };
    let mut limited = false;
    for _ in 0..=LOGIN_BURST {
        if start("203.0.113.7").await.unwrap().status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the burst was never limited");
    assert_eq!(
        start("203.0.113.8").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
}
