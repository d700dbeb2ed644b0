//! Plans over HTTP: the approval names the plan the admin saw, a changed plan refuses it, the
//! plan is readable by every role (secrets redacted), and only admins refresh it.

use berth_db::PgPool;
use berth_domain::RequestStatus;
use reqwest::StatusCode;

use crate::helpers::spawn;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_approval_must_name_the_current_plan(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let ada = app.signed_in("ada").await;
    let request = app.submit(&maria, "Trucking").await;
    let seen = app.plan(request).await;
    let id = request.to_string();

    // No hash: refused as invalid input.
    let res = app
        .call(
            &ada,
            "decide_request",
            &[("id", &id), ("decision", "approve"), ("note", "")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The plan is refreshed after the page was opened: the old hash is refused.
    let res = app
        .call(&maria, "refresh_plan", &[("request_id", &id)])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "managers do not refresh plans"
    );
    let res = app.call(&ada, "refresh_plan", &[("request_id", &id)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .call(
            &ada,
            "decide_request",
            &[
                ("id", &id),
                ("decision", "approve"),
                ("note", ""),
                ("plan_hash", &seen),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("plan is still being computed"));
    let current = app.plan(request).await;
    // The test planner gives the same content again: the same hash.
    assert_eq!(current, seen);
    let other = "0".repeat(64);
    let res = app
        .call(
            &ada,
            "decide_request",
            &[
                ("id", &id),
                ("decision", "approve"),
                ("note", ""),
                ("plan_hash", &other),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("the plan changed since you opened this page"));
    assert_eq!(app.status(request).await, RequestStatus::Submitted);

    let res = app.decide(&ada, request, "approve", "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.status(request).await, RequestStatus::Approved);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn every_role_reads_the_plan_with_secrets_redacted(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;

    // Before the worker: the page says the plan is being computed.
    let page = app.page(&maria, &format!("/requests/{request}")).await;
    assert!(page.contains("Computing the plan"), "{page}");

    let hash = app.plan(request).await;
    let auditor = app.signed_in("audrey").await;
    let page = app.page(&auditor, &format!("/requests/{request}")).await;
    assert!(page.contains(&format!("Plan {}", &hash[..12])), "{page}");
    assert!(page.contains("[redacted]"));
    assert!(page.contains("AWS::SecretsManager::Secret"));
    assert!(page.contains("Capacity: fits"));
    let plan_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM plans WHERE request_id = $1")
        .bind(request)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let res = auditor
        .get(format!("{}/plans/{plan_id}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(&hash));
}
