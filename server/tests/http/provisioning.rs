//! Approval plans a run; the live progress stream shows it; only admins operate runs.

use berth_db::PgPool;
use berth_domain::RunStatus;
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::helpers::{browser, read_until, spawn};

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn approval_plans_a_run_that_the_live_stream_shows_and_only_admins_operate(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let env = app.environment_of(request).await;
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
    let status: RunStatus = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
        .bind(run)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Cancelled);
    let mut res = maria.get(&url).send().await.unwrap();
    let caught_up = read_until(&mut res, "\n\n").await;
    assert!(caught_up.contains(r#""status":"cancelled""#), "{caught_up}");
    assert!(
        caught_up.contains(r#""environment_status":"failed""#),
        "{caught_up}"
    );
}
