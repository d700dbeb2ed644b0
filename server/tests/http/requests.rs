//! Requests and decisions: separation of duties, roles, and validation that stores nothing bad.

use berth_db::PgPool;
use berth_domain::RequestStatus;
use reqwest::StatusCode;

use crate::helpers::spawn;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_requester_cannot_approve_even_as_admin(pool: PgPool) {
    let app = spawn(pool, true).await;
    let sam = app.signed_in("sam").await; // manager + admin
    let request = app.submit(&sam, "Trucking").await;

    let res = app.decide(&sam, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("own request"));
    assert_eq!(app.status(request).await, RequestStatus::Submitted);

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
    assert_eq!(app.status(request).await, RequestStatus::Approved);
    let again = app.decide(&ada, request, "approve", "").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
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
