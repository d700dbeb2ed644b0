//! What every feature's tests share: the real application on port 0 over a fresh database,
//! browser-like clients, and readers for the answers (CSV, links, server-sent events).

use std::collections::HashMap;

use berth_db::PgPool;
use leptos::prelude::LeptosOptions;
use reqwest::{redirect::Policy, Client, StatusCode};
use server::{config::Settings, startup::Application};
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub progress: server::progress::ProgressHub,
}

pub async fn spawn(pool: PgPool, dev_login: bool) -> TestApp {
    spawn_with(pool, dev_login, |_| {}).await
}

pub async fn spawn_with(
    pool: PgPool,
    dev_login: bool,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    try_spawn_with(pool, dev_login, tweak).await.unwrap()
}

/// As [`spawn_with`], returning start-up's error instead of panicking on it.
pub async fn try_spawn_with(
    pool: PgPool,
    dev_login: bool,
    tweak: impl FnOnce(&mut Settings),
) -> anyhow::Result<TestApp> {
    // The server's warnings, shown with a failing test's output (`RUST_LOG` to see more).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .with_test_writer()
        .try_init();
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
        // A small stand-in for the built site (a stylesheet and the icon), so files are served.
        .site_root(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http/site"))
        .site_addr(addr)
        .build();
    let app = Application::build_with_pool(settings, options, pool.clone()).await?;
    let base = format!("http://{}", app.local_addr());
    let progress = app.progress();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Ok(TestApp {
        base,
        pool,
        progress,
    })
}

pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn user_id(&self, subject: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE subject = $1")
            .bind(subject)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The id of the user (a person or a service account) shown under `name`.
    pub async fn user_id_by_name(&self, name: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM users WHERE display_name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A client signed in as a demo user through the development sign-in.
    pub async fn signed_in(&self, subject: &str) -> Client {
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

    pub async fn call(
        &self,
        client: &Client,
        func: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(format!("{}/api/{func}", self.base))
            .header("sec-fetch-site", "same-origin")
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn submit(&self, client: &Client, name: &str) -> Uuid {
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

    /// Decides as the page does: an approval names the request's current plan, computed first
    /// by a plan worker with set answers (`berth_runs::testing::TestPlanner`) when none is ready.
    pub async fn decide(
        &self,
        client: &Client,
        request: Uuid,
        decision: &str,
        note: &str,
    ) -> reqwest::Response {
        let hash = if decision == "approve" {
            self.plan(request).await
        } else {
            String::new()
        };
        let id = request.to_string();
        self.call(
            client,
            "decide_request",
            &[
                ("id", &id),
                ("decision", decision),
                ("note", note),
                ("plan_hash", &hash),
            ],
        )
        .await
    }

    /// Computes the request's queued plans and returns the current plan's hash.
    pub async fn plan(&self, request: Uuid) -> String {
        use berth_runs::testing::{plan_worker, TestPlanner};
        plan_worker(&self.pool, TestPlanner::default())
            .drain()
            .await
            .unwrap();
        berth_runs::plans::current_plan(&self.pool, request)
            .await
            .unwrap()
            .and_then(|p| p.hash)
            .unwrap_or_default()
    }

    pub async fn status(&self, request: Uuid) -> berth_domain::RequestStatus {
        sqlx::query_scalar("SELECT status FROM requests WHERE id = $1")
            .bind(request)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Maria, signed in, requests a unit named `name`: her client, the request and its
    /// environment (the start of most tests about one environment).
    pub async fn maria_requests(&self, name: &str) -> (Client, Uuid, Uuid) {
        let maria = self.signed_in("maria").await;
        let request = self.submit(&maria, name).await;
        let env = self.environment_of(request).await;
        (maria, request, env)
    }

    /// The text of the page at `path` (`/…`) as `client` gets it (redirects not followed).
    pub async fn page(&self, client: &Client, path: &str) -> String {
        client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Signs `client` out as the page's button does.
    pub async fn sign_out(&self, client: &Client) -> reqwest::Response {
        client
            .post(format!("{}/auth/logout", self.base))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap()
    }

    /// The environment a request belongs to.
    pub async fn environment_of(&self, request: Uuid) -> Uuid {
        sqlx::query_scalar("SELECT environment_id FROM requests WHERE id = $1")
            .bind(request)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Reads a CSV body into rows of cells.
pub fn csv_rows(body: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The `href` of the first link with `rel="…"` in a page.
pub fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

/// Reads from a server-sent-event response until `needle` has arrived (or 10 s pass).
pub async fn read_until(res: &mut reqwest::Response, needle: &str) -> String {
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

/// A local OpenID provider's skeleton on a free port: discovery (with UserInfo) and an empty key
/// set; `routes` adds what a test needs (token, UserInfo). Returns its issuer.
pub async fn fake_provider(routes: axum::Router) -> String {
    use axum::{routing::get, Json};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/me"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    });
    let router = routes
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
