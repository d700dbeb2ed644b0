//! Webhook endpoints over HTTP: admins only, addresses refused unless allowed, the secret shown
//! once and stored sealed, and the server's own worker delivering a signed event to a receiver
//! on this machine.

use std::sync::{Arc, Mutex};

use axum::{http::HeaderMap, routing::post, Router};
use berth_db::PgPool;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn, spawn_with, TestApp};

const ALL_EVENTS: [(&str, &str); 2] = [
    ("events[request.submitted]", "on"),
    ("events[environment.ready]", "on"),
];

async fn register(app: &TestApp, client: &reqwest::Client, url: &str) -> reqwest::Response {
    let mut form = vec![("url", url), ("description", "chat ops")];
    form.extend(ALL_EVENTS);
    app.call(client, "create_webhook", &form).await
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn only_admins_register_and_never_to_private_addresses(pool: PgPool) {
    let app = spawn(pool, true).await;
    for who in ["maria", "audrey"] {
        let client = app.signed_in(who).await;
        let res = app.call(&client, "list_webhooks", &[]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who}");
        let res = register(&app, &client, "http://127.0.0.1:9/x").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who}");
    }
    let res = app
        .call(&crate::helpers::browser(), "list_webhooks", &[])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let ada = app.signed_in("ada").await;
    // This server has no sealing key: its admins are told on the page.
    let list = app
        .call(&ada, "list_webhooks", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(r#""secrets_sealed":false"#), "{list}");
    let page = app.page(&ada, "/admin/webhooks").await;
    assert!(
        page.contains("Signing secrets are stored unsealed"),
        "{page}"
    );
    for (url, says) in [
        ("http://127.0.0.1:9/x", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.8/hook", "a private address"),
        ("https://[::1]/hook", "a loopback address"),
        ("http://169.254.169.254/latest", "a link-local address"),
        ("http://localhost:9/x", "localhost resolves to"),
        ("ftp://files.example/x", "Use an http:// or https:// URL."),
    ] {
        let res = register(&app, &ada, url).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let text = res.text().await.unwrap();
        assert!(text.contains(says), "{url}: {text}");
    }
    let res = app
        .call(
            &ada,
            "create_webhook",
            &[("url", "http://127.0.0.1:9/x"), ("description", "")],
        )
        .await;
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Choose at least one event."));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    let page = app.page(&ada, "/admin/webhooks").await;
    assert!(page.contains("Register an endpoint"), "{page}");
    assert!(page.contains("No endpoint yet."), "{page}");
    let maria = app.signed_in("maria").await;
    let page = app.page(&maria, "/admin/webhooks").await;
    assert!(page.contains("This needs the admin role."), "{page}");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_registered_endpoint_gets_signed_events_and_its_secret_is_shown_once(pool: PgPool) {
    // A receiver on this machine, which only the development setting allows.
    type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;
    let got: Deliveries = Arc::default();
    let receiver = Router::new().route(
        "/hook",
        post({
            let got = got.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                got.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let app = spawn_with(pool, true, |s| {
        s.notify.webhooks.allow_private = true;
        let key = berth_db::sealing::SealingKey::from_base64(key).unwrap();
        s.notify.webhooks.sealer = Some(berth_db::sealing::Sealer::new(key, None));
    })
    .await;

    let ada = app.signed_in("ada").await;
    let res = register(&app, &ada, &hook).await;
    assert_eq!(res.status(), StatusCode::OK);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_owned();

    // Stored sealed with the server's key, never as it is.
    let (plain, sealed): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT secret, secret_sealed FROM webhook_endpoints WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let raw = berth_notify::signing::key_from_secret(&secret).unwrap();
    assert_eq!(plain, None);
    assert!(!sealed.unwrap().windows(raw.len()).any(|w| w == raw));

    // Never shown again: not in the list, the endpoint's page or its server functions.
    let list = app
        .call(&ada, "list_webhooks", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&hook) && !list.contains(&secret[6..]),
        "{list}"
    );
    assert!(list.contains(r#""secrets_sealed":true"#), "{list}");
    let page = app.page(&ada, &format!("/admin/webhooks/{id}")).await;
    assert!(
        page.contains(&hook) && !page.contains(&secret[6..]),
        "{page}"
    );

    // Maria's request reaches the receiver, signed with that secret, from the server's worker.
    let maria = app.signed_in("maria").await;
    let request = app.submit(&maria, "Trucking").await;
    berth_testkit::until(
        "the event is delivered",
        200,
        std::time::Duration::from_millis(50),
        || {
            let got = got.clone();
            async move { !got.lock().unwrap().is_empty() }
        },
    )
    .await;
    let (headers, body) = got.lock().unwrap()[0].clone();
    let header = |n: &str| headers[n].to_str().unwrap().to_owned();
    let key = berth_notify::signing::key_from_secret(&secret).unwrap();
    assert!(berth_notify::signing::verify(
        &key,
        &header("webhook-id"),
        header("webhook-timestamp").parse().unwrap(),
        &body,
        &header("webhook-signature"),
    ));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "request.submitted");
    assert_eq!(body["data"]["request"]["id"], request.to_string());
    let link = body["data"]["request"]["url"].as_str().unwrap();
    assert!(link.ends_with(&format!("/requests/{request}")), "{link}");

    // The log shows it; a redelivery sends it again; turned off, the page says so.
    let detail: Value = app
        .call(&ada, "get_webhook", &[("id", &id)])
        .await
        .json()
        .await
        .unwrap();
    let delivery = &detail["deliveries"][0];
    assert_eq!(delivery["status"], "succeeded", "{detail}");
    assert_eq!(delivery["last_status"], 204);
    let delivery_id = delivery["id"].as_str().unwrap();
    let res = app
        .call(
            &ada,
            "redeliver_webhook",
            &[("id", &id), ("delivery_id", delivery_id)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    berth_testkit::until(
        "the redelivery arrives",
        200,
        std::time::Duration::from_millis(50),
        || {
            let got = got.clone();
            async move { got.lock().unwrap().len() == 2 }
        },
    )
    .await;
    {
        let got = got.lock().unwrap();
        assert_eq!(got[1].0["webhook-id"], got[0].0["webhook-id"]);
    }
    let res = app
        .call(
            &ada,
            "change_webhook",
            &[("id", &id), ("action", "disable")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = app.page(&ada, &format!("/admin/webhooks/{id}")).await;
    assert!(
        page.contains("This endpoint is off") && page.contains("Turned off by Ada Admin."),
        "{page}"
    );
    let res = app
        .call(&ada, "change_webhook", &[("id", &id), ("action", "delete")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.call(&ada, "get_webhook", &[("id", &id)]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
