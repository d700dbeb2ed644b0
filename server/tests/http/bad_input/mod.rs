//! The bad-input suite (issue 15): what a careless or hostile caller may send, everywhere Berth
//! reads input, against one running server. Every server function with malformed, oversized,
//! wrong-typed, missing and nested arguments; every `/api/v1` endpoint with bad JSON bodies,
//! bad query strings (dates past the calendar, huge numbers, bad cursors) and bad path ids; the
//! pages and downloads with the same; and the domain's parsers fed the same text directly.
//!
//! Each input must be answered without a server error and without a panic: refused cleanly
//! (4xx with a readable message, no Rust `Debug` output, no deserializer's words) or answered
//! as usual (an input the call ignores, a page showing its notice). The figures are printed
//! and written to `.local/bad-input.txt` (tools/test.sh shows them). Rerun alone:
//! `cargo test -p server --test http bad_input -- --nocapture`.

use std::{
    fmt::Write as _,
    num::NonZeroU32,
    sync::atomic::{AtomicUsize, Ordering},
};

use berth_db::PgPool;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{browser, spawn_with, TestApp};

mod inputs;
mod parsers;

use inputs::*;
use parsers::domain_parsers;

/// Panics on this test's threads (the server runs on the test's runtime) since the hook went in.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or_default();
        if name.contains("bad_input") || name.starts_with("tokio-runtime") {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

/// Parts of Rust's `Debug` output that must never reach a caller.
const DEBUG_MARKS: &[&str] = &[
    "Err(",
    "Ok(",
    "Some(",
    "Error {",
    "kind:",
    "panicked",
    "RUST_BACKTRACE",
    "ParseIntError",
];

/// A deserializer's own words: never shown by the pages and server functions (whose callers are
/// people), while the API names the refused field in them for the developer calling it.
const DESERIALIZER_WORDS: &[&str] = &[
    "invalid type:",
    "invalid digit",
    "missing field",
    "duplicate field",
    "expected",
    "Failed to deserialize",
    "Cannot parse",
];

#[derive(Default)]
struct Tally {
    /// Whether a refusal may show a deserializer's words (the API's may).
    api: bool,
    tried: usize,
    refused: usize,
    answered: usize,
    /// 5xx or no answer at all.
    server_errors: Vec<String>,
    /// 4xx without a readable message.
    unclean: Vec<String>,
}

impl Tally {
    fn record(&mut self, what: &str, answer: Result<(StatusCode, String), String>) {
        self.tried += 1;
        match answer {
            Err(e) => self.server_errors.push(format!("{what}: no answer ({e})")),
            Ok((status, body)) if status.is_server_error() => {
                let body: String = body.chars().take(300).collect();
                self.server_errors.push(format!("{what}: {status} {body}"));
            }
            Ok((status, body)) if status.is_client_error() => {
                let message = body.trim();
                let words = if self.api {
                    &[][..]
                } else {
                    DESERIALIZER_WORDS
                };
                match DEBUG_MARKS
                    .iter()
                    .chain(words)
                    .find(|m| message.contains(*m))
                {
                    _ if message.is_empty() => self
                        .unclean
                        .push(format!("{what}: {status} with no message")),
                    Some(mark) => {
                        let body: String = body.chars().take(300).collect();
                        self.unclean
                            .push(format!("{what}: {status} shows {mark:?}: {body}"))
                    }
                    None => self.refused += 1,
                }
            }
            Ok(_) => self.answered += 1,
        }
    }

    fn add(&mut self, other: &Tally) {
        self.tried += other.tried;
        self.refused += other.refused;
        self.answered += other.answered;
        self.server_errors
            .extend(other.server_errors.iter().cloned());
        self.unclean.extend(other.unclean.iter().cloned());
    }

    fn line(&self, area: &str) -> String {
        format!(
            "{area}: {} inputs tried, {} refused cleanly (4xx with a message), {} answered as \
             usual, {} unclear refusals, {} server errors",
            self.tried,
            self.refused,
            self.answered,
            self.unclean.len(),
            self.server_errors.len()
        )
    }
}

/// Sends one request; the status and (for anything but a stream) the body.
async fn send(req: reqwest::RequestBuilder) -> Result<(StatusCode, String), String> {
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let stream = res.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    });
    if stream {
        return Ok((status, String::new()));
    }
    // A method the path does not take: the `Allow` header is the answer.
    let allow = res
        .headers()
        .get("allow")
        .map(|v| format!("Allow: {}", v.to_str().unwrap_or_default()));
    let body = res.text().await.map_err(|e| e.to_string())?;
    match allow {
        Some(allow) if status == StatusCode::METHOD_NOT_ALLOWED && body.is_empty() => {
            Ok((status, allow))
        }
        _ => Ok((status, body)),
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn bad_input(pool: PgPool) {
    count_panics();
    let app = spawn_with(pool, true, |s| {
        s.api_rate_per_minute = NonZeroU32::new(1_000_000).unwrap();
        s.api_burst = NonZeroU32::new(1_000_000).unwrap();
    })
    .await;
    let (_, request, env) = app.maria_requests("Trucking").await;
    // Sam is manager and admin: the most calls get past the policy to their arguments.
    let sam = app.signed_in("sam").await;
    let token =
        server::tokens::issue_for_login(&app.pool, "sam", "read,request,decide,operate", "1")
            .await
            .unwrap();

    let mut report = String::new();
    let mut total = Tally::default();
    for (area, tally) in [
        ("server functions", server_functions(&app, &sam).await),
        ("API", api(&app, &token, env, request).await),
        ("pages and downloads", pages(&app, &sam, env, request).await),
        ("domain parsers", domain_parsers()),
    ] {
        writeln!(report, "  {}", tally.line(area)).unwrap();
        total.add(&tally);
    }
    let panics = PANICS.load(Ordering::SeqCst);
    let summary = format!(
        "bad input: {} inputs tried, {} refused cleanly (4xx with a message), {} answered as \
         usual, {} unclear refusals, {} server errors, {panics} panics\n{report}",
        total.tried,
        total.refused,
        total.answered,
        total.unclean.len(),
        total.server_errors.len(),
    );
    println!("{summary}");
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local");
    let _ = std::fs::create_dir_all(local);
    let _ = std::fs::write(format!("{local}/bad-input.txt"), &summary);

    assert!(
        total.server_errors.is_empty(),
        "server errors:\n{}",
        total.server_errors.join("\n")
    );
    assert!(
        total.unclean.is_empty(),
        "unclear refusals:\n{}",
        total.unclean.join("\n")
    );
    assert_eq!(panics, 0, "the server panicked (see the output above)");
    assert!(total.tried >= 1_500, "{summary}");
}

async fn server_functions(app: &TestApp, sam: &Client) -> Tally {
    let mut tally = Tally::default();
    let mut paths: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    paths.sort_unstable();
    assert!(paths.len() >= 30, "server functions found: {paths:?}");
    for (what, content_type, body) in server_fn_bodies() {
        for path in &paths {
            let answer = send(
                sam.post(format!("{}{path}", app.base))
                    .header("sec-fetch-site", "same-origin")
                    .header("accept", "application/json")
                    .header("content-type", content_type)
                    .body(body.clone()),
            )
            .await;
            tally.record(&format!("{path} with {what}"), answer);
        }
    }
    // Still signed in: nothing above ended the session.
    let (status, _) = send(sam.get(format!("{}/tokens", app.base))).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    tally
}

async fn api(app: &TestApp, token: &str, env: Uuid, request: Uuid) -> Tally {
    let mut tally = Tally {
        api: true,
        ..Tally::default()
    };
    let c = browser();
    let api = |method: Method, path: &str| {
        c.request(method, format!("{}/api/v1{path}", app.base))
            .header("authorization", format!("Bearer {token}"))
    };
    // Bad ids in every path that takes one.
    let templates = [
        (Method::GET, "/environments/{id}"),
        (Method::POST, "/environments/{id}/changes"),
        (Method::POST, "/environments/{id}/decommission"),
        (Method::GET, "/environments/{id}/run"),
        (Method::GET, "/environments/{id}/history"),
        (Method::GET, "/environments/{id}/history/export?format=csv"),
        (Method::GET, "/environments/{id}/progress"),
        (Method::GET, "/requests/{id}"),
        (Method::GET, "/requests/{id}/plan"),
        (Method::POST, "/requests/{id}/plan"),
        (Method::POST, "/requests/{id}/approve"),
        (Method::POST, "/requests/{id}/reject"),
        (Method::POST, "/requests/{id}/withdraw"),
        (Method::GET, "/runs/{id}"),
        (Method::POST, "/runs/{id}/retry"),
        (Method::POST, "/runs/{id}/cancel"),
        (Method::POST, "/people/{id}/sessions/end"),
    ];
    for id in bad_ids() {
        for (method, template) in &templates {
            let path = template.replace("{id}", &id);
            let mut req = api(method.clone(), &path);
            if *method == Method::POST {
                req = req.json(&serde_json::json!({"reason": "r", "confirm": "x"}));
            }
            tally.record(&format!("{method} {path}"), send(req).await);
        }
    }
    // Bad JSON bodies to every endpoint that takes one (real ids, so the body is what fails).
    let run = Uuid::new_v4();
    let posts = [
        "/requests".to_string(),
        format!("/environments/{env}/changes"),
        format!("/environments/{env}/decommission"),
        format!("/requests/{request}/approve"),
        format!("/requests/{request}/reject"),
        format!("/runs/{run}/retry"),
        format!("/runs/{run}/cancel"),
    ];
    for (what, content_type, body) in json_bodies() {
        for path in &posts {
            let req = api(Method::POST, path)
                .header("content-type", content_type)
                .body(body.clone());
            tally.record(&format!("POST {path} with {what}"), send(req).await);
        }
    }
    // Idempotency keys that are not.
    for key in ["", " ", "\u{7f}", &"k".repeat(300)] {
        let Ok(value) = reqwest::header::HeaderValue::from_bytes(key.as_bytes()) else {
            continue;
        };
        let req = api(Method::POST, "/requests")
            .header("idempotency-key", value)
            .json(&serde_json::json!({"name": "Idem", "slug": "idem", "owner_contact": "a@b.example", "blueprint": "insight", "size": "small"}));
        tally.record(
            &format!("POST /requests with idempotency key {key:.20?}"),
            send(req).await,
        );
    }
    // Bad query strings.
    for q in list_queries() {
        let path = format!("/environments?{q}");
        tally.record(
            &format!("GET {path:.80}"),
            send(api(Method::GET, &path)).await,
        );
    }
    for q in history_queries() {
        for path in [
            format!("/environments/{env}/history?{q}"),
            format!("/environments/{env}/history/export?format=json&{q}"),
        ] {
            tally.record(
                &format!("GET {path:.120}"),
                send(api(Method::GET, &path)).await,
            );
        }
    }
    for q in [
        "",
        "format=xml",
        "format=",
        "format=CSV",
        "format=csv&format=json",
    ] {
        let path = format!("/environments/{env}/history/export?{q}");
        tally.record(&format!("GET {path}"), send(api(Method::GET, &path)).await);
    }
    // Paths that are no endpoint.
    for path in [
        "/",
        "/environments/",
        "/nope",
        "/%00",
        "/requests/x/y/z",
        "/openapi.json/x",
    ] {
        tally.record(&format!("GET {path}"), send(api(Method::GET, path)).await);
    }
    tally
}

async fn pages(app: &TestApp, sam: &Client, env: Uuid, request: Uuid) -> Tally {
    let mut tally = Tally::default();
    let get = |path: String| {
        sam.get(format!("{}{path}", app.base))
            .header("sec-fetch-site", "same-origin")
    };
    for q in list_queries() {
        for page in ["/", "/audit", "/audit/environments.csv"] {
            let path = format!("{page}?{q}");
            tally.record(&format!("GET {path:.80}"), send(get(path.clone())).await);
        }
    }
    for q in history_queries() {
        for page in [
            format!("/environments/{env}"),
            format!("/environments/{env}/history.csv"),
            format!("/environments/{env}/history.json"),
        ] {
            let path = format!("{page}?{q}");
            tally.record(&format!("GET {path:.120}"), send(get(path.clone())).await);
        }
    }
    let templates = [
        "/requests/{id}",
        "/plans/{id}",
        "/environments/{id}",
        "/environments/{id}/change",
        "/environments/{id}/decommission",
        "/environments/{id}/history.csv",
        "/environments/{id}/progress",
        "/admin/webhooks/{id}",
    ];
    for id in bad_ids() {
        for template in templates {
            let path = template.replace("{id}", &id);
            tally.record(&format!("GET {path:.80}"), send(get(path.clone())).await);
        }
    }
    for q in ["id=x", "environment=%00", "return_to=//evil.example"] {
        for page in [
            "/requests/new",
            "/tokens",
            "/admin/service-accounts",
            "/admin/people",
            "/login",
        ] {
            let path = format!("{page}?{q}");
            tally.record(&format!("GET {path}"), send(get(path.clone())).await);
        }
    }
    let _ = request;
    tally
}

/// Refused date filters and cursors of the API answer 422, each refused parameter named.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn refused_api_filters_are_422_naming_each_parameter(pool: PgPool) {
    let app = spawn_with(pool, true, |_| {}).await;
    let (_, _, env) = app.maria_requests("Trucking").await;
    let token = server::tokens::issue_for_login(&app.pool, "audrey", "read", "1")
        .await
        .unwrap();
    let c = browser();
    let get = |path: String| {
        let c = c.clone();
        let token = token.clone();
        let url = format!("{}/api/v1{path}", app.base);
        async move {
            let res = c
                .get(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let fields = |p: &Value| -> Vec<String> {
        p["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (query, named) in [
        ("to=9999-12-31", vec!["to"]),
        ("from=garbage", vec!["from"]),
        ("from=garbage&to=9999-12-31", vec!["from", "to"]),
        ("from=2026-12-02&to=2026-12-01", vec!["from", "to"]),
        (
            "kind=runs&from=2026-12-02&to=2026-12-01",
            vec!["from", "to"],
        ),
        ("to=9999-12-31T23:59:59-23:59", vec!["to"]),
        ("after=abc", vec!["after"]),
        ("after=1&before=2", vec!["after", "before"]),
        ("kind=Not%20a%20kind&after=-1", vec!["kind", "after"]),
    ] {
        for path in [
            format!("/environments/{env}/history?{query}"),
            format!("/environments/{env}/history/export?format=csv&{query}"),
        ] {
            if path.contains("export") && (query.contains("after") || query.contains("before")) {
                continue; // the export takes no cursor
            }
            let (status, problem) = get(path.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: {problem}"
            );
            assert_eq!(fields(&problem), named, "{path}: {problem}");
            assert!(
                problem["errors"][0]["message"].as_str().unwrap().len() > 10,
                "{problem}"
            );
        }
    }
    for (query, named) in [
        ("limit=0", vec!["limit"]),
        ("limit=101", vec!["limit"]),
        ("after=garbage", vec!["after"]),
        ("before=1.x", vec!["before"]),
        ("after=1.1&before=1.1", vec!["after", "before"]),
    ] {
        let (status, problem) = get(format!("/environments?{query}")).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(fields(&problem), named, "{query}: {problem}");
    }
}
