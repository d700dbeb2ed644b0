//! Change and decommission requests over HTTP: bad input is a clear 4xx naming the field and
//! stores nothing; a change while a run is live is a conflict.

use berth_db::PgPool;
use reqwest::StatusCode;

use crate::helpers::{spawn, TestApp};

/// A unit requested, approved and provisioned (by a scripted executor): ready for changes.
async fn ready(app: &TestApp, name: &str) -> String {
    let maria = app.signed_in("maria").await;
    let ada = app.signed_in("ada").await;
    let request = app.submit(&maria, name).await;
    let res = app.decide(&ada, request, "approve", "").await;
    assert!(res.status().is_success(), "{}", res.status());
    run_all(app).await;
    app.environment_of(request).await.to_string()
}

async fn requests_of(app: &TestApp, env: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM requests WHERE environment_id = $1::uuid")
        .bind(env)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn bad_changes_name_their_field_and_store_nothing(pool: PgPool) {
    let app = spawn(pool, true).await;
    let env = ready(&app, "Trucking").await;
    let maria = app.signed_in("maria").await;
    let change = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("environment_id", env.clone()),
            ("name", "Trucking".to_owned()),
            ("slug", "trucking".to_owned()),
            ("description", String::new()),
            ("owner_contact", "owner@seaview.example".to_owned()),
            ("size", "small".to_owned()),
        ];
        for (k, v) in extra {
            form.retain(|(key, _)| key != k);
            form.push((k, v.to_string()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let maria = maria.clone();
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = app.call(&maria, "request_change", &pairs).await;
            (res.status(), res.text().await.unwrap())
        }
    };
    for (extra, field) in [
        (
            vec![("overrides[dsm.replicas]", "99")],
            "overrides.dsm.replicas",
        ),
        (
            vec![("overrides[influxdb.colour]", "blue")],
            "overrides.influxdb.colour",
        ),
        (
            vec![("overrides[influxdb.retention]", "forever")],
            "overrides.influxdb.retention",
        ),
        (vec![("name", "Trucks"), ("size", "large")], "name"),
        (vec![("slug", "trucks"), ("size", "large")], "slug"),
        (vec![], "form"),
    ] {
        let (status, body) = send(change(&extra)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra:?}: {body}"
        );
        assert!(body.contains(field), "{extra:?} names {field}: {body}");
    }
    assert!(
        send(change(&[])).await.1.contains("Nothing would change"),
        "an unchanged form says so"
    );
    assert_eq!(requests_of(&app, &env).await, 1, "only the create request");

    // A wrong typed confirmation.
    let res = app
        .call(
            &maria,
            "request_decommission",
            &[("environment_id", &env), ("confirm", "trucking")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("confirm"));
    assert_eq!(requests_of(&app, &env).await, 1);

    // Auditors and anonymous callers are refused before anything is read.
    let res = app
        .call(
            &crate::helpers::browser(),
            "request_change",
            &change(&[("size", "large")])
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn no_change_while_a_run_is_live(pool: PgPool) {
    let app = spawn(pool, true).await;
    let env = ready(&app, "Trucking").await;
    let maria = app.signed_in("maria").await;
    let ada = app.signed_in("ada").await;
    let form = |size: &'static str| {
        vec![
            ("environment_id", env.as_str()),
            ("name", "Trucking"),
            ("slug", "trucking"),
            ("description", ""),
            ("owner_contact", "owner@seaview.example"),
            ("size", size),
        ]
    };
    let res = app.call(&maria, "request_change", &form("large")).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    let request: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM requests WHERE environment_id = $1::uuid AND kind = 'change'",
    )
    .bind(&env)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // A second one while the first awaits its decision.
    let res = app.call(&maria, "request_change", &form("medium")).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Approved: its run is live (no worker here), and no change may be asked for.
    let res = app.decide(&ada, request, "approve", "").await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = app.call(&maria, "request_change", &form("medium")).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("in progress"));
    let res = app
        .call(
            &maria,
            "request_decommission",
            &[("environment_id", &env), ("confirm", "Trucking")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(requests_of(&app, &env).await, 2);
}

/// Drains the engine with the scripted executor: every approved run finishes.
async fn run_all(app: &TestApp) {
    berth_runs::Engine::with_config(
        app.pool.clone(),
        berth_runs::testing::TestExecutor::new(),
        berth_runs::testing::config(),
    )
    .drain()
    .await
    .unwrap();
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_admin_asks_to_return_to_the_spec_before_the_last_change(pool: PgPool) {
    let app = spawn(pool, true).await;
    let env = ready(&app, "Trucking").await;
    let (maria, ada, alan) = (
        app.signed_in("maria").await,
        app.signed_in("ada").await,
        app.signed_in("alan").await,
    );
    let ask = |who: reqwest::Client| {
        let (app, env) = (&app, env.clone());
        async move {
            let res = app
                .call(&who, "request_return", &[("environment_id", env.as_str())])
                .await;
            (res.status(), res.text().await.unwrap())
        }
    };
    // Never changed: nothing to return to, and nothing stored.
    let (status, body) = ask(ada.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("no earlier spec"), "{body}");
    assert_eq!(requests_of(&app, &env).await, 1);

    // Changed from small to large with a DSM override, and run.
    let res = app
        .call(
            &maria,
            "request_change",
            &[
                ("environment_id", env.as_str()),
                ("name", "Trucking"),
                ("slug", "trucking"),
                ("description", ""),
                ("owner_contact", "owner@seaview.example"),
                ("size", "large"),
                ("overrides[dsm.replicas]", "3"),
                // As the form showed it: small's default, so it follows large's default.
                ("overrides[influxdb.storage_size]", "20Gi"),
            ],
        )
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let (change, changed): (uuid::Uuid, serde_json::Value) = sqlx::query_as(
        "SELECT id, spec FROM requests WHERE environment_id = $1::uuid AND kind = 'change'",
    )
    .bind(&env)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        changed["overrides"],
        serde_json::json!({"dsm": {"replicas": 3}}),
        "{changed}"
    );
    assert!(app
        .decide(&ada, change, "approve", "")
        .await
        .status()
        .is_success());
    run_all(&app).await;

    // An auditor may not ask; an admin may, and gets the spec before the change back.
    let audrey = app.signed_in("audrey").await;
    assert_eq!(ask(audrey).await.0, StatusCode::FORBIDDEN);
    let (status, body) = ask(ada.clone()).await;
    assert!(
        status.is_success() || status.is_redirection(),
        "{status}: {body}"
    );
    let (back, spec): (uuid::Uuid, serde_json::Value) = sqlx::query_as(
        "SELECT id, spec FROM requests WHERE environment_id = $1::uuid AND kind = 'change'
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&env)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_ne!(back, change);
    assert_eq!(spec["size"], "small", "{spec}");
    assert!(
        spec.get("overrides").is_none(),
        "no override before: {spec}"
    );
    assert_eq!(spec["name"], "Trucking");

    // Approved like any other change: not by the admin who asked, by another one.
    assert_eq!(
        app.decide(&ada, back, "approve", "").await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(app
        .decide(&alan, back, "approve", "")
        .await
        .status()
        .is_success());
    run_all(&app).await;
    let size: String = sqlx::query_scalar("SELECT size FROM environments WHERE id = $1::uuid")
        .bind(&env)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(size, "small");
}
