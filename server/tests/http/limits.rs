//! What one caller may take of the server: body size, slow clients, live streams (shared
//! snapshots, caps, re-checks) and downloads at once.

use std::time::Duration;

use berth_db::PgPool;
use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{read_until, spawn, spawn_with};

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn bodies_over_the_limit_are_refused(pool: PgPool) {
    let app = spawn_with(pool, true, |s| s.limits.body_bytes = 64 * 1024).await;
    let maria = app.signed_in("maria").await;
    let big = "x".repeat(100 * 1024);
    let res = app
        .call(&maria, "submit_request", &[("name", big.as_str())])
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Under the limit, the same call is read (and refused for its content, not its size).
    let res = app.call(&maria, "submit_request", &[("name", "x")]).await;
    assert_ne!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_client_that_never_finishes_its_headers_is_cut_off(pool: PgPool) {
    let app = spawn_with(pool, true, |s| {
        s.limits.client_timeout = Duration::from_millis(500)
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The server closes the connection (perhaps after a 408) instead of waiting forever.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{answer:?}"
    );

    // A client that sends its headers in time is served.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

/// A call that waits longer than the request timeout (here on a table another transaction
/// has locked) is answered 503 then, and the server serves the next call as usual.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_call_that_waits_too_long_is_answered_503(pool: PgPool) {
    let app = spawn_with(pool, true, |s| {
        s.limits.request_timeout = Duration::from_secs(1)
    })
    .await;
    let token = server::tokens::issue_for_login(&app.pool, "maria", "read", "1")
        .await
        .unwrap();
    let whoami = || {
        reqwest::Client::new()
            .get(format!("{}/api/v1/whoami", app.base))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(10))
            .send()
    };
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let res = whoami().await.expect("an answer before the client gave up");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    lock.rollback().await.unwrap();
    assert_eq!(whoami().await.unwrap().status(), StatusCode::OK);
}

/// Twenty streams on one environment: a change costs one snapshot, not twenty.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn one_change_costs_one_snapshot_however_many_watch(pool: PgPool) {
    let app = spawn(pool, true).await;
    let (_, request, env) = app.maria_requests("Trucking").await;
    let url = format!("{}/environments/{env}/progress", app.base);

    let mut streams = Vec::new();
    for who in ["maria", "ada", "audrey", "mark"] {
        let client = app.signed_in(who).await;
        for _ in 0..5 {
            let mut res = client.get(&url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            read_until(&mut res, "\n\n").await;
            streams.push(res);
        }
    }
    let before = app.progress.snapshots_read();
    assert!(before <= 2, "{before} snapshots for 20 streams opening");

    let mut conn = app.pool.acquire().await.unwrap();
    berth_db::events::append(
        &mut conn,
        env,
        Some(request),
        None,
        "request.note",
        serde_json::json!({"note": "a change"}),
    )
    .await
    .unwrap();
    for res in &mut streams {
        let pushed = read_until(res, "\n\n").await;
        assert!(pushed.contains("event: progress"), "{pushed}");
    }
    let cost = app.progress.snapshots_read() - before;
    assert_eq!(cost, 1, "one change read {cost} snapshots for 20 streams");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn streams_are_capped_per_session_and_in_all(pool: PgPool) {
    let app = spawn_with(pool, true, |s| {
        s.limits.streams_per_session = 3;
        s.limits.streams_total = 5;
    })
    .await;
    let (maria, _, env) = app.maria_requests("Trucking").await;
    let url = format!("{}/environments/{env}/progress", app.base);

    let mut open = Vec::new();
    for _ in 0..3 {
        let res = maria.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = maria.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The company-wide stream counts too.
    let res = maria
        .get(format!("{}/environments/all/progress", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another session has its own share, up to the server's total.
    let ada = app.signed_in("ada").await;
    for _ in 0..2 {
        let res = ada.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = ada.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // A closed stream gives its place back.
    drop(open.remove(0));
    let mut freed = false;
    for _ in 0..50 {
        let res = maria.get(&url).send().await.unwrap();
        if res.status() == StatusCode::OK {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the closed stream's place was never given back");
}

/// A stream re-checks its reader: signing out elsewhere, losing the role or an admin ending the
/// sessions ends it.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn streams_end_when_the_reader_signs_out_or_loses_the_role(pool: PgPool) {
    let app = spawn_with(pool, true, |s| {
        s.limits.stream_recheck = Duration::from_millis(300)
    })
    .await;
    let (maria, _, env) = app.maria_requests("Trucking").await;
    let url = format!("{}/environments/{env}/progress", app.base);
    let ends = |mut res: reqwest::Response| async move {
        read_until(&mut res, "\n\n").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, res.chunk()).await {
                Err(_) => return false,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Ok(Ok(Some(_))) => continue,
            }
        }
    };

    // Still allowed: the stream stays open past several re-checks.
    let res = maria.get(&url).send().await.unwrap();
    assert!(!ends(res).await, "a stream of a signed-in manager ended");

    // Signed out (in another tab): the open stream ends.
    let res = maria.get(&url).send().await.unwrap();
    assert_eq!(app.sign_out(&maria).await.status(), StatusCode::SEE_OTHER);
    assert!(ends(res).await, "the stream outlived the sign-out");

    // The role removed (as the identity provider's groups would): the stream ends.
    let mark = app.signed_in("mark").await;
    let res = mark.get(&url).send().await.unwrap();
    sqlx::query("UPDATE users SET roles = '{}' WHERE subject = 'mark'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(ends(res).await, "the stream outlived the role");

    // Her sessions ended by an admin while she watches: the stream ends, and the re-check that
    // found it (no response of hers in between) kept why, for her next page to say.
    let watching = app.signed_in("maria").await;
    let res = watching.get(&url).send().await.unwrap();
    let ada = app.signed_in("ada").await;
    let person = app.user_id("maria").await.to_string();
    let ended = app.call(&ada, "end_sessions", &[("person", &person)]).await;
    assert_eq!(ended.status(), StatusCode::OK);
    assert!(ends(res).await, "the stream outlived the admin's decision");
    let page = app.page(&watching, "/login").await;
    assert!(
        page.contains("An administrator ended your session."),
        "{page}"
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_person_runs_a_few_downloads_at_once(pool: PgPool) {
    let app = spawn(pool, true).await;
    let (_, _, env) = app.maria_requests("Trucking").await;
    // A history long enough that a download which is not read stays open (beyond socket
    // buffers): 20,000 events of about 2 KB.
    sqlx::query(
        "INSERT INTO events (environment_id, kind, details)
         SELECT $1, 'request.note', jsonb_build_object('note', repeat('x', 2000))
         FROM generate_series(1, 20000)",
    )
    .bind(env)
    .execute(&app.pool)
    .await
    .unwrap();
    let audrey = app.signed_in("audrey").await;
    let url = format!("{}/environments/{env}/history.csv", app.base);
    let get = || {
        audrey
            .get(&url)
            .header("sec-fetch-site", "same-origin")
            .send()
    };
    let mut running = Vec::new();
    for _ in 0..server::routes::export::EXPORTS_PER_PERSON {
        let res = get().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        running.push(res);
    }
    let res = get().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another auditor is not held up by Audrey's downloads.
    let ada = app.signed_in("ada").await;
    let res = ada
        .get(format!("{}/audit/environments.csv", app.base))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A finished download gives its place back, and the file is whole.
    let body = running.pop().unwrap().text().await.unwrap();
    let notes = body.lines().filter(|l| l.contains("request.note")).count();
    assert_eq!(notes, 20_000);
    let res = get().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
