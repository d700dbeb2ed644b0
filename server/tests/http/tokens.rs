//! The token page's and the service-account page's server functions: a person makes, uses and
//! revokes their own tokens (never another's, never wider than their roles), admins alone make
//! service accounts and their tokens and disable them, and the company's token maximum follows
//! the admin setting. Each token is then used on `/api/v1` as a script would.

use berth_db::{
    audit::{recent, AuthEventKind},
    PgPool,
};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::helpers::{browser, spawn, TestApp};

/// Calls a server function; the status and the decoded JSON answer.
async fn call(app: &TestApp, c: &Client, func: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = app.call(c, func, form).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// `GET /api/v1/whoami` with a bearer secret: the status and the answer.
async fn whoami(app: &TestApp, secret: &str) -> (StatusCode, Value) {
    let res = browser()
        .get(format!("{}/api/v1/whoami", app.base))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The secret and the token's id from an `Issued` answer (panics on anything else).
fn issued(answer: &(StatusCode, Value)) -> (String, String) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    let issued = &body["Issued"];
    let secret = issued["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no secret in {body}"));
    (
        secret.to_owned(),
        issued["token"]["id"].as_str().unwrap().to_owned(),
    )
}

/// The field errors of an `Invalid` answer, as (field, message).
fn invalid(answer: &(StatusCode, Value)) -> Vec<(String, String)> {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    body["Invalid"]
        .as_array()
        .unwrap_or_else(|| panic!("not refused by field: {body}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn stored_tokens(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_person_makes_uses_and_revokes_their_own_token(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;

    // The form offers what her roles allow, within the company's maximum.
    let (status, mine) = call(&app, &maria, "my_tokens", &[]).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(
        mine["allowed_scopes"],
        serde_json::json!(["read", "request"])
    );
    assert_eq!(mine["max_days"], 90);
    assert_eq!(mine["tokens"], serde_json::json!([]));

    let res = app
        .call(
            &maria,
            "create_token",
            &[
                ("name", "laptop script"),
                ("days", "30"),
                ("scopes[]", "read"),
                ("scopes[]", "request"),
            ],
        )
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let answer = (res.status(), res.json::<Value>().await.unwrap());
    let (secret, id) = issued(&answer);
    assert!(
        secret.starts_with("berth_pat_") && secret.len() == 74,
        "{secret}"
    );
    assert_eq!(
        answer.1["Issued"]["token"]["scopes"],
        serde_json::json!(["read", "request"])
    );

    // The secret works on the API as her, with the scopes asked for.
    let (status, me) = whoami(&app, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Maria Manager");
    assert_eq!(me["token"]["id"], id.as_str());
    assert_eq!(me["token"]["name"], "laptop script");

    // Her list shows it with its last use, and never the secret again.
    let res = app.call(&maria, "my_tokens", &[]).await;
    let text = res.text().await.unwrap();
    assert!(!text.contains(&secret[10..]), "the list carries the secret");
    let mine: Value = serde_json::from_str(&text).unwrap();
    let listed = &mine["tokens"][0];
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["shown_prefix"], &secret[..16]);
    assert_eq!(listed["last_used_addr"], "127.0.0.1");
    assert!(listed["last_used"]["iso"].is_string(), "{listed}");
    assert_eq!(listed["revoked"], Value::Null);

    // Another person cannot revoke it (it is not theirs: 404), nor can anyone signed out.
    let mark = app.signed_in("mark").await;
    assert_eq!(
        call(&app, &mark, "revoke_token", &[("id", &id)]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, &browser(), "revoke_token", &[("id", &id)])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::OK);

    // She can; the next call is refused, and revoking again finds no live token.
    assert_eq!(
        call(&app, &maria, "revoke_token", &[("id", &id)]).await.0,
        StatusCode::OK
    );
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, &maria, "revoke_token", &[("id", &id)]).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, mine) = call(&app, &maria, "my_tokens", &[]).await;
    assert!(mine["tokens"][0]["revoked"]["iso"].is_string(), "{mine}");

    // Both acts are in the audit trail, by her, naming the token and never its secret.
    let maria_id = app.user_id("maria").await;
    for kind in [AuthEventKind::TokenIssued, AuthEventKind::TokenRevoked] {
        let events = recent(&app.pool, kind, 5).await.unwrap();
        assert_eq!(events.len(), 1, "{kind:?}");
        let (who, _, what) = &events[0];
        assert_eq!(*who, Some(maria_id));
        let what = what.as_deref().unwrap();
        assert!(
            what.contains(&id) && what.contains("laptop script"),
            "{what}"
        );
        assert!(
            !what.contains(&secret[16..]),
            "the audit trail carries the secret"
        );
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_token_is_never_wider_than_its_holders_roles(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;

    // A manager cannot put the decide scope on a token; every field is named; nothing stored.
    let answer = call(
        &app,
        &maria,
        "create_token",
        &[("name", "approver"), ("days", "30"), ("scopes[]", "decide")],
    )
    .await;
    assert_eq!(
        invalid(&answer),
        [(
            "scopes".to_owned(),
            "Your roles do not allow the decide scope.".to_owned()
        )]
    );
    let answer = call(
        &app,
        &maria,
        "create_token",
        &[("name", " "), ("days", "0")],
    )
    .await;
    let fields: Vec<String> = invalid(&answer).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["name", "days", "scopes"]);
    assert_eq!(stored_tokens(&app).await, 0);

    // An admin may.
    let ada = app.signed_in("ada").await;
    let answer = call(
        &app,
        &ada,
        "create_token",
        &[("name", "approver"), ("days", "30"), ("scopes[]", "decide")],
    )
    .await;
    let (secret, _) = issued(&answer);
    let (_, me) = whoami(&app, &secret).await;
    assert_eq!(me["token"]["scopes"], serde_json::json!(["decide"]));

    // No role, no tokens; signed out, sign in first.
    let nora = app.signed_in("nora").await;
    for (client, status) in [
        (&nora, StatusCode::FORBIDDEN),
        (&browser(), StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(call(&app, client, "my_tokens", &[]).await.0, status);
        let answer = call(
            &app,
            client,
            "create_token",
            &[("name", "x"), ("days", "1"), ("scopes[]", "read")],
        )
        .await;
        assert_eq!(answer.0, status, "{}", answer.1);
    }
    assert_eq!(stored_tokens(&app).await, 1);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn only_admins_reach_the_service_account_functions(pool: PgPool) {
    let app = spawn(pool, true).await;
    let ada = app.signed_in("ada").await;
    let (status, made) = call(
        &app,
        &ada,
        "create_service_account",
        &[("name", "CI pipeline"), ("roles[]", "manager")],
    )
    .await;
    assert_eq!((status, made), (StatusCode::OK, Value::from("Saved")));
    let account = app.user_id_by_name("CI pipeline").await.to_string();
    let token = uuid::Uuid::new_v4().to_string();
    let calls: [(&str, Vec<(&str, &str)>); 6] = [
        ("admin_overview", vec![]),
        (
            "create_service_account",
            vec![("name", "Sneaky"), ("roles[]", "admin")],
        ),
        (
            "issue_service_token",
            vec![
                ("account", &account),
                ("name", "x"),
                ("days", "1"),
                ("scopes[]", "read"),
            ],
        ),
        (
            "revoke_service_token",
            vec![("account", &account), ("token", &token)],
        ),
        (
            "set_service_account_disabled",
            vec![("account", &account), ("disabled", "true")],
        ),
        ("set_max_token_days", vec![("max_token_days", "365")]),
    ];
    for login in ["maria", "audrey", "nora"] {
        let client = app.signed_in(login).await;
        for (func, form) in &calls {
            let (status, body) = call(&app, &client, func, form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{login} {func}: {body}");
        }
    }
    for (func, form) in &calls {
        assert_eq!(
            call(&app, &browser(), func, form).await.0,
            StatusCode::UNAUTHORIZED,
            "{func}"
        );
    }
    // Nothing of it happened.
    let (_, overview) = call(&app, &ada, "admin_overview", &[]).await;
    assert_eq!(overview["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(overview["accounts"][0]["disabled"], Value::Null);
    assert_eq!(overview["max_token_days"], 90);
    assert_eq!(stored_tokens(&app).await, 0);
    // The refusals are in the audit trail.
    let denied = recent(&app.pool, AuthEventKind::AccessDenied, 50)
        .await
        .unwrap();
    assert!(denied.len() >= 18, "{denied:?}");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_service_accounts_token_works_until_it_is_disabled_or_revoked(pool: PgPool) {
    let app = spawn(pool, true).await;
    let ada = app.signed_in("ada").await;

    // Made with roles like a person's; its name is its own.
    let answer = call(
        &app,
        &ada,
        "create_service_account",
        &[
            ("name", "CI pipeline"),
            ("roles[]", "manager"),
            ("roles[]", "auditor"),
        ],
    )
    .await;
    assert_eq!(answer.1, "Saved");
    let answer = call(
        &app,
        &ada,
        "create_service_account",
        &[("name", "ci pipeline"), ("roles[]", "manager")],
    )
    .await;
    assert_eq!(
        invalid(&answer),
        [(
            "name".to_owned(),
            "A service account named 'ci pipeline' already exists.".to_owned()
        )]
    );
    let answer = call(
        &app,
        &ada,
        "create_service_account",
        &[("name", "No roles")],
    )
    .await;
    assert_eq!(invalid(&answer)[0].0, "roles");
    let account = app.user_id_by_name("CI pipeline").await.to_string();
    let (_, overview) = call(&app, &ada, "admin_overview", &[]).await;
    let listed = &overview["accounts"][0];
    assert_eq!(listed["name"], "CI pipeline");
    assert_eq!(listed["roles"], serde_json::json!(["auditor", "manager"]));
    assert_eq!(listed["created_by"], "Ada Admin");
    assert_eq!(
        listed["allowed_scopes"],
        serde_json::json!(["read", "request"])
    );

    // Its token: no wider than its roles, then the real one.
    let issue = |scope: &'static str| {
        let account = account.clone();
        let ada = ada.clone();
        let app = &app;
        async move {
            call(
                app,
                &ada,
                "issue_service_token",
                &[
                    ("account", &account),
                    ("name", "deploys"),
                    ("days", "7"),
                    ("scopes[]", scope),
                ],
            )
            .await
        }
    };
    assert_eq!(invalid(&issue("decide").await)[0].0, "scopes");
    let (secret, token) = issued(&issue("read").await);
    assert!(secret.starts_with("berth_sat_"), "{secret}");
    let (status, me) = whoami(&app, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "CI pipeline");
    assert_eq!(me["user_id"], account.as_str());

    // Disabled: its tokens are refused at the next call, and no new one is issued.
    let toggle = |disabled: &'static str| {
        let (account, ada, app) = (account.clone(), ada.clone(), &app);
        async move {
            call(
                app,
                &ada,
                "set_service_account_disabled",
                &[("account", &account), ("disabled", disabled)],
            )
            .await
        }
    };
    assert_eq!(toggle("true").await.0, StatusCode::OK);
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(issue("read").await.0, StatusCode::CONFLICT);
    let (_, overview) = call(&app, &ada, "admin_overview", &[]).await;
    assert!(overview["accounts"][0]["disabled"]["iso"].is_string());
    // Enabled again, the same token works.
    assert_eq!(toggle("false").await.0, StatusCode::OK);
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::OK);

    // The service-account path never reaches a person's tokens.
    let maria = app.signed_in("maria").await;
    let (_, maria_token) = issued(
        &call(
            &app,
            &maria,
            "create_token",
            &[("name", "mine"), ("days", "3"), ("scopes[]", "read")],
        )
        .await,
    );
    let maria_id = app.user_id("maria").await.to_string();
    for (account, token) in [(&maria_id, &maria_token), (&account, &maria_token)] {
        let answer = call(
            &app,
            &ada,
            "revoke_service_token",
            &[("account", account), ("token", token)],
        )
        .await;
        assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
    }
    assert_eq!(
        call(
            &app,
            &ada,
            "set_service_account_disabled",
            &[("account", &maria_id), ("disabled", "true")]
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Revoked by an admin: refused at the next call.
    let answer = call(
        &app,
        &ada,
        "revoke_service_token",
        &[("account", &account), ("token", &token)],
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::UNAUTHORIZED);

    let ada_id = app.user_id("ada").await;
    for (kind, count) in [
        (AuthEventKind::ServiceAccountCreated, 1),
        (AuthEventKind::ServiceAccountDisabled, 1),
        (AuthEventKind::ServiceAccountEnabled, 1),
        (AuthEventKind::TokenIssued, 2),
        (AuthEventKind::TokenRevoked, 1),
    ] {
        let events = recent(&app.pool, kind, 10).await.unwrap();
        assert_eq!(events.len(), count, "{kind:?}: {events:?}");
        if kind != AuthEventKind::TokenIssued {
            assert_eq!(events[0].0, Some(ada_id), "{kind:?}");
        }
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_token_maximum_follows_the_admin_setting(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    let ada = app.signed_in("ada").await;
    let half_year = [("name", "long"), ("days", "180"), ("scopes[]", "read")];

    let answer = call(&app, &maria, "create_token", &half_year).await;
    assert_eq!(
        invalid(&answer),
        [(
            "days".to_owned(),
            "A token lives from 1 to 90 days.".to_owned()
        )]
    );

    // Out of range is refused by field, and changes nothing.
    for bad in ["0", "366", "a year"] {
        let answer = call(&app, &ada, "set_max_token_days", &[("max_token_days", bad)]).await;
        assert_eq!(invalid(&answer)[0].0, "max_token_days", "{bad}");
    }
    let answer = call(
        &app,
        &ada,
        "set_max_token_days",
        &[("max_token_days", "180")],
    )
    .await;
    assert_eq!(answer, (StatusCode::OK, Value::from("Saved")));
    let (_, overview) = call(&app, &ada, "admin_overview", &[]).await;
    assert_eq!(overview["max_token_days"], 180);
    assert_eq!(overview["settings_changed"][0], "Ada Admin");

    let (_, mine) = call(&app, &maria, "my_tokens", &[]).await;
    assert_eq!(mine["max_days"], 180);
    let (secret, id) = issued(&call(&app, &maria, "create_token", &half_year).await);
    assert_eq!(whoami(&app, &secret).await.0, StatusCode::OK);
    let days: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - created_at)::float8 / 86400 FROM api_tokens
         WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((days - 180.0).abs() < 0.01, "{days}");
    let answer = call(
        &app,
        &maria,
        "create_token",
        &[("name", "longer"), ("days", "181"), ("scopes[]", "read")],
    )
    .await;
    assert_eq!(invalid(&answer)[0].0, "days");

    let changes = recent(&app.pool, AuthEventKind::SettingChanged, 10)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, Some(app.user_id("ada").await));
    assert_eq!(changes[0].2.as_deref(), Some("max_token_days: 90 -> 180"));
}
