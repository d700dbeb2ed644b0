//! The environment list follows the company-wide live stream (`/environments/all/progress`):
//! `hello` on connect, `changed` when any environment changed; readable as the list is.

use berth_db::PgPool;
use reqwest::StatusCode;

use crate::helpers::{browser, read_until, spawn};

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_company_stream_says_when_any_environment_changed(pool: PgPool) {
    let app = spawn(pool, true).await;
    let url = format!("{}/environments/all/progress", app.base);

    // Anonymous callers get no stream; a malformed environment id is no environment.
    let res = browser().get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let audrey = app.signed_in("audrey").await;
    let res = audrey
        .get(format!("{}/environments/everything/progress", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let mut res = audrey.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first = read_until(&mut res, "\n\n").await;
    assert!(first.starts_with("event: hello"), "{first}");

    // Someone else's new request, then its approval: each is announced, with no data in it.
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    let changed = read_until(&mut res, "event: changed").await;
    assert!(!changed.contains("Trucking"), "{changed}");
    let ada = app.signed_in("ada").await;
    assert_eq!(
        app.decide(&ada, request, "approve", "").await.status(),
        StatusCode::OK
    );
    read_until(&mut res, "event: changed").await;
}
