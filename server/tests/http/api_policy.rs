//! Every `/api/v1` endpoint × every kind of caller, against the policy matrix; then what the
//! API adds around the policy: idempotent creation, attribution to the token, the rate limit.

use berth_db::PgPool;
use berth_domain::{
    token::{NewToken, TokenKind},
    Role,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    api::token,
    helpers::{browser, spawn, spawn_with, TestApp},
};

/// Sends `method path` with an optional bearer and JSON body; returns status and JSON body.
async fn send(
    c: &Client,
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, format!("{}/api/v1{path}", app.base));
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    // Streams (live progress) never end: their status is enough.
    if res.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    }) {
        return (status, Value::Null);
    }
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A service account with `roles`, made by the admin ada, and a token with `scopes`.
async fn service_account(app: &TestApp, name: &str, roles: &[Role], scopes: &[&str]) -> String {
    use secrecy::ExposeSecret;
    let ada = app.user_id("ada").await;
    let account = berth_db::tokens::create_service_account(&app.pool, name, roles, ada)
        .await
        .unwrap();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let new = NewToken::parse("ci", "30", &scopes, roles, 90).unwrap();
    berth_db::tokens::issue(&app.pool, account.id, ada, TokenKind::ServiceAccount, &new)
        .await
        .unwrap()
        .secret
        .expose_secret()
        .to_owned()
}

/// The callers, in the order of each row's expectations.
const CALLERS: [&str; 8] = [
    "anonymous",
    "expired token",
    "revoked token",
    "no role",
    "manager",
    "admin",
    "auditor",
    "service account",
];

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn every_endpoint_answers_every_caller_as_the_policy_says(pool: PgPool) {
    let app = spawn(pool, true).await;
    let c = browser();

    // Who calls: each with every scope their roles allow.
    let (_, manager) = token(&app, "maria", &["read", "request"]).await;
    let (_, admin) = token(&app, "ada", &["read", "request", "decide", "operate"]).await;
    let (_, auditor) = token(&app, "audrey", &["read"]).await;
    let (_, nobody) = token(&app, "mark", &["read", "request"]).await;
    sqlx::query("UPDATE users SET roles = '{}' WHERE subject = 'mark'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (expired_id, expired) =
        token(&app, "alan", &["read", "request", "decide", "operate"]).await;
    sqlx::query(
        "UPDATE api_tokens SET created_at = now() - interval '2 days',
                               expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(expired_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let (revoked_id, revoked) =
        token(&app, "alan", &["read", "request", "decide", "operate"]).await;
    let alan = app.user_id("alan").await;
    berth_db::tokens::revoke(&app.pool, revoked_id, alan, alan)
        .await
        .unwrap();
    let service =
        service_account(&app, "CI pipeline", &[Role::Manager], &["read", "request"]).await;
    let bearers: [Option<&str>; 8] = [
        None,
        Some(&expired),
        Some(&revoked),
        Some(&nobody),
        Some(&manager),
        Some(&admin),
        Some(&auditor),
        Some(&service),
    ];

    // What they act on: an approved request whose run waits for a worker, and a request the
    // service account made over the API that awaits a decision.
    let maria = app.signed_in("maria").await;
    let approved = app.submit(&maria, "Trucking").await;
    let ada = app.signed_in("ada").await;
    assert!(app
        .decide(&ada, approved, "approve", "")
        .await
        .status()
        .is_success());
    let env = app.environment_of(approved).await;
    let run: Uuid = sqlx::query_scalar("SELECT id FROM runs WHERE environment_id = $1")
        .bind(env)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let new_unit = json!({
        "name": "Charging stations", "slug": "charging", "owner_contact": "ops@seaview.example",
        "blueprint": "insight", "size": "small"
    });
    let (status, made) = send(
        &c,
        &app,
        Method::POST,
        "/requests",
        Some(&service),
        Some(&new_unit),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let awaiting = made["id"].as_str().unwrap().to_owned();

    use StatusCode as S;
    const OK: S = S::OK;
    const NO: S = S::FORBIDDEN;
    const BAD: S = S::UNPROCESSABLE_ENTITY;
    const BUSY: S = S::CONFLICT;
    // (method, path, body, public, [no role, manager, admin, auditor, service account]); the
    // three without a live token always get 401 (public paths: 200). Bodies that pass the
    // policy are refused by the core afterwards (422/409), so nothing changes but the last row.
    type Row = (Method, String, Option<Value>, bool, [S; 5]);
    let rows: Vec<Row> = vec![
        (Method::GET, "/openapi.json".into(), None, true, [OK; 5]),
        (Method::GET, "/whoami".into(), None, false, [OK; 5]),
        (
            Method::GET,
            "/audit/verify".into(),
            None,
            false,
            [NO, NO, OK, OK, NO],
        ),
        (
            Method::GET,
            "/environments".into(),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            "/people".into(),
            None,
            false,
            [NO, NO, OK, NO, NO],
        ),
        // Nobody by that id: past the policy, the admin gets 404 and no session ends.
        (
            Method::POST,
            format!("/people/{}/sessions/end", Uuid::new_v4()),
            None,
            false,
            [NO, NO, S::NOT_FOUND, NO, NO],
        ),
        (
            Method::GET,
            format!("/environments/{env}"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/environments/{env}/run"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/environments/{env}/history"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/environments/{env}/history/export?format=json"),
            None,
            false,
            [NO, NO, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/environments/{env}/progress"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/requests/{approved}"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/requests/{approved}/plan"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/runs/{run}"),
            None,
            false,
            [NO, OK, OK, OK, OK],
        ),
        (
            Method::POST,
            "/requests".into(),
            Some(
                json!({"name": "", "slug": "", "owner_contact": "x", "blueprint": "insight", "size": "small"}),
            ),
            false,
            [NO, BAD, NO, NO, BAD],
        ),
        (
            Method::POST,
            format!("/environments/{env}/changes"),
            Some(json!({"overrides": {"nope": "1"}})),
            false,
            [NO, BAD, NO, NO, BAD],
        ),
        (
            Method::POST,
            format!("/environments/{env}/decommission"),
            Some(json!({"confirm": "wrong"})),
            false,
            [NO, BUSY, BUSY, NO, BUSY],
        ),
        (
            Method::POST,
            format!("/requests/{awaiting}/plan"),
            None,
            false,
            [NO, NO, S::ACCEPTED, NO, NO],
        ),
        (
            Method::POST,
            format!("/requests/{awaiting}/approve"),
            Some(json!({"plan_hash": "not a hash"})),
            false,
            [NO, NO, BAD, NO, NO],
        ),
        (
            Method::POST,
            format!("/requests/{awaiting}/reject"),
            Some(json!({"reason": ""})),
            false,
            [NO, NO, BAD, NO, NO],
        ),
        (
            Method::POST,
            format!("/runs/{run}/retry"),
            Some(json!({"reason": "again"})),
            false,
            [NO, NO, BUSY, NO, NO],
        ),
        (
            Method::POST,
            format!("/runs/{run}/cancel"),
            Some(json!({"reason": ""})),
            false,
            [NO, NO, BAD, NO, NO],
        ),
        // Only the requester withdraws: the service account, last (it changes the request).
        (
            Method::POST,
            format!("/requests/{awaiting}/withdraw"),
            None,
            false,
            [NO, NO, NO, NO, OK],
        ),
    ];

    let mut wrong = Vec::new();
    for (method, path, body, public, expected) in &rows {
        for (i, bearer) in bearers.iter().enumerate() {
            let want = match i {
                0..=2 if *public => OK,
                0..=2 => S::UNAUTHORIZED,
                _ => expected[i - 3],
            };
            let (got, answer) = send(&c, &app, method.clone(), path, *bearer, body.as_ref()).await;
            if got != want {
                wrong.push(format!(
                    "{method} {path} as {}: {got}, expected {want}: {answer}",
                    CALLERS[i]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A date filter past the calendar's end is refused, not a panic.
    let (status, problem) = send(
        &c,
        &app,
        Method::GET,
        &format!("/environments/{env}/history?to=9999-12-31"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        app.status(approved).await,
        berth_domain::RequestStatus::Approved
    );
}

/// Creating with an `Idempotency-Key` twice creates once; the same key with another body is
/// refused; the events the token caused name it, on the timeline and in the API's history.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn creation_is_idempotent_and_attributed_to_the_token(pool: PgPool) {
    let app = spawn(pool, true).await;
    let c = browser();
    let service = service_account(&app, "Deployer", &[Role::Manager], &["read", "request"]).await;
    let body = json!({
        "name": "Trucking", "slug": "trucking", "owner_contact": "ops@seaview.example",
        "blueprint": "insight", "size": "small"
    });
    let post = |key: &'static str, body: Value| {
        let c = c.clone();
        let url = format!("{}/api/v1/requests", app.base);
        let service = service.clone();
        async move {
            let res = c
                .post(url)
                .header("authorization", format!("Bearer {service}"))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let location = res
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, location, res.json::<Value>().await.unwrap())
        }
    };
    let (first, location, made) = post("deploy-42", body.clone()).await;
    assert_eq!(first, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/requests/{id}").as_str())
    );
    let (again, location_again, replayed) = post("deploy-42", body.clone()).await;
    assert_eq!(again, StatusCode::CREATED);
    assert_eq!(replayed["id"], made["id"]);
    assert_eq!(location_again, location);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let mut other = body.clone();
    other["size"] = json!("large");
    let (status, _, problem) = post("deploy-42", other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("different request"));
    // A refused request forgets its key: corrected, it may use it again.
    let mut bad = body.clone();
    bad["name"] = json!("Other");
    bad["slug"] = json!("trucking");
    let (status, _, taken) = post("deploy-43", bad.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{taken}");
    assert_eq!(taken["errors"][0]["field"], "slug", "{taken}");
    bad["slug"] = json!("other");
    let (status, _, _) = post("deploy-43", bad).await;
    assert_eq!(status, StatusCode::CREATED);

    // The submission names the service account and its token.
    let env = made["environment_id"].as_str().unwrap();
    let (status, page) = send(
        &c,
        &app,
        Method::GET,
        &format!("/environments/{env}/history"),
        Some(&service),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let submitted = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "request.submitted")
        .unwrap();
    assert_eq!(submitted["actor"], "Deployer");
    assert_eq!(submitted["token"], "ci");
    // A page's event (no token) names no token.
    let maria = app.signed_in("maria").await;
    let by_page = app.submit(&maria, "Charging").await;
    let events = berth_db::events::for_environment(&app.pool, app.environment_of(by_page).await)
        .await
        .unwrap();
    assert_eq!(events[0].actor_label().as_deref(), Some("Maria Manager"));
    let events = berth_db::events::for_environment(&app.pool, env.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        events[0].actor_label().as_deref(),
        Some("Deployer (token ci)")
    );
}

/// Past its burst, a token gets 429 with `Retry-After`; another token is not slowed; a second
/// server on the same database (another replica) draws from the same allowance.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn each_token_is_rate_limited(pool: PgPool) {
    let slow = |s: &mut server::config::Settings| {
        s.api_rate_per_minute = std::num::NonZeroU32::new(1).unwrap();
        s.api_burst = std::num::NonZeroU32::new(2).unwrap();
    };
    let app = spawn_with(pool, true, slow).await;
    let c = browser();
    let (_, first) = token(&app, "maria", &["read"]).await;
    let (_, second) = token(&app, "maria", &["read"]).await;
    for _ in 0..2 {
        assert_eq!(
            send(&c, &app, Method::GET, "/whoami", Some(&first), None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let res = c
        .get(format!("{}/api/v1/whoami", app.base))
        .header("authorization", format!("Bearer {first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        send(&c, &app, Method::GET, "/whoami", Some(&second), None)
            .await
            .0,
        StatusCode::OK
    );

    let replica = spawn_with(app.pool.clone(), true, slow).await;
    for (token, here, status) in [
        (&first, &replica, StatusCode::TOO_MANY_REQUESTS),
        (&second, &replica, StatusCode::OK),
        (&second, &app, StatusCode::TOO_MANY_REQUESTS),
    ] {
        assert_eq!(
            send(&c, here, Method::GET, "/whoami", Some(token), None)
                .await
                .0,
            status
        );
    }
}
