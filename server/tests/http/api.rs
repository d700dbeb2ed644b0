//! `/api/v1`: bearer tokens (live, revoked, expired, malformed), scopes against roles, errors as
//! problem+json, and the OpenAPI document against its committed copy.

use berth_db::PgPool;
use berth_domain::{
    token::{NewToken, TokenKind},
    Role,
};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::helpers::{browser, spawn, TestApp};

/// Makes a personal token for the demo user `login` with `scopes`; returns its secret.
pub(crate) async fn token(app: &TestApp, login: &str, scopes: &[&str]) -> (uuid::Uuid, String) {
    use secrecy::ExposeSecret;
    let user = app.user_id(login).await;
    let roles = berth_db::users::get(&app.pool, user)
        .await
        .unwrap()
        .unwrap()
        .roles;
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let new = NewToken::parse("test", "30", &scopes, &roles, 90).unwrap();
    let issued = berth_db::tokens::issue(&app.pool, user, user, TokenKind::Personal, &new)
        .await
        .unwrap();
    (issued.token.id, issued.secret.expose_secret().to_owned())
}

async fn get(
    c: &Client,
    app: &TestApp,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut req = c.get(format!("{}/api/v1{path}", app.base));
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.text().await.unwrap();
    (
        status,
        kind,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// Asserts a problem+json answer with `status` whose detail contains `says`.
fn problem(answer: (StatusCode, String, Value), status: StatusCode, says: &str) {
    let (got, kind, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(kind, "application/problem+json", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(says), "{detail:?} should say {says:?}");
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn tokens_are_checked_on_every_call(pool: PgPool) {
    let app = spawn(pool, true).await;
    let maria = app.signed_in("maria").await;
    app.submit(&maria, "Trucking").await;
    let c = browser();

    // No token, a malformed one, an unknown one: 401 alike, with the scheme to use.
    let anonymous = c
        .get(format!("{}/api/v1/whoami", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"berth\""
    );
    problem(
        get(&c, &app, "/whoami", None).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
    problem(
        get(&c, &app, "/whoami", Some("berth_pat_xyz")).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
    let unknown = format!("berth_pat_{}", "0".repeat(64));
    problem(
        get(&c, &app, "/whoami", Some(&unknown)).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
    // A browser session is no credential here.
    problem(
        get(&maria, &app, "/environments", None).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );

    // A live token: who it is, then the list and one environment.
    let (id, secret) = token(&app, "maria", &["read", "request"]).await;
    assert!(secret.starts_with("berth_pat_") && secret.len() == 74);
    let (status, _, me) = get(&c, &app, "/whoami", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Maria Manager");
    assert_eq!(me["roles"], serde_json::json!(["manager"]));
    assert_eq!(
        me["token"]["scopes"],
        serde_json::json!(["read", "request"])
    );
    let stored = berth_db::tokens::get(&app.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.last_used_addr.as_deref(), Some("127.0.0.1"));
    let (status, _, page) = get(&c, &app, "/environments?q=truck&limit=10", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["name"], "Trucking");
    assert_eq!(page["items"][0]["status"], "submitted");
    let env = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, one) = get(&c, &app, &format!("/environments/{env}"), Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["slug"], "trucking");
    assert_eq!(one["size"], "small");

    // Bad input: 400 for what does not parse, 422 for what parses but means nothing, 404.
    let nobody = format!("/environments/{}", uuid::Uuid::new_v4());
    for (path, status, says) in [
        ("/environments?limit=many", StatusCode::BAD_REQUEST, "limit"),
        (
            "/environments?limit=500",
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
        ),
        ("/environments?status=sunk", StatusCode::BAD_REQUEST, "sunk"),
        (
            "/environments?after=x",
            StatusCode::UNPROCESSABLE_ENTITY,
            "after",
        ),
        ("/environments/new", StatusCode::BAD_REQUEST, "UUID"),
        (nobody.as_str(), StatusCode::NOT_FOUND, "Not found"),
        (
            "/no-such-thing",
            StatusCode::NOT_FOUND,
            "No such API endpoint",
        ),
    ] {
        problem(get(&c, &app, path, Some(&secret)).await, status, says);
    }

    // A token without the read scope cannot list.
    let (_, request_only) = token(&app, "maria", &["request"]).await;
    problem(
        get(&c, &app, "/environments", Some(&request_only)).await,
        StatusCode::FORBIDDEN,
        "read scope",
    );

    // A removed role counts at the next call.
    sqlx::query("UPDATE users SET roles = '{}' WHERE subject = 'maria'")
        .execute(&app.pool)
        .await
        .unwrap();
    problem(
        get(&c, &app, "/environments", Some(&secret)).await,
        StatusCode::FORBIDDEN,
        "no Berth role",
    );

    // Revoked and expired tokens are refused like unknown ones.
    let (audrey_id, audrey) = token(&app, "audrey", &["read"]).await;
    assert_eq!(
        get(&c, &app, "/environments", Some(&audrey)).await.0,
        StatusCode::OK
    );
    let audrey_user = app.user_id("audrey").await;
    assert!(
        berth_db::tokens::revoke(&app.pool, audrey_id, audrey_user, audrey_user)
            .await
            .unwrap()
    );
    problem(
        get(&c, &app, "/whoami", Some(&audrey)).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
    let (ada_id, ada) = token(&app, "ada", &["read", "decide"]).await;
    sqlx::query(
        "UPDATE api_tokens SET created_at = now() - interval '2 days',
                               expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(ada_id)
    .execute(&app.pool)
    .await
    .unwrap();
    problem(
        get(&c, &app, "/whoami", Some(&ada)).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
}

/// A service account is a user with roles that never signs in; its tokens start `berth_sat_`,
/// and disabling it stops them.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn service_accounts_call_with_their_own_tokens(pool: PgPool) {
    use secrecy::ExposeSecret;
    let app = spawn(pool, true).await;
    let ada = app.user_id("ada").await;
    let ci =
        berth_db::tokens::create_service_account(&app.pool, "CI pipeline", &[Role::Manager], ada)
            .await
            .unwrap();
    let scopes = vec!["read".to_owned()];
    let new = NewToken::parse("deploys", "7", &scopes, &ci.roles, 90).unwrap();
    let issued = berth_db::tokens::issue(&app.pool, ci.id, ada, TokenKind::ServiceAccount, &new)
        .await
        .unwrap();
    let secret = issued.secret.expose_secret().to_owned();
    assert!(secret.starts_with("berth_sat_"));
    let c = browser();
    let (status, _, me) = get(&c, &app, "/whoami", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "CI pipeline");
    assert_eq!(me["roles"], serde_json::json!(["manager"]));
    sqlx::query("UPDATE users SET disabled_at = now() WHERE id = $1")
        .bind(ci.id)
        .execute(&app.pool)
        .await
        .unwrap();
    problem(
        get(&c, &app, "/whoami", Some(&secret)).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    );
}

#[test]
fn scopes_never_exceed_roles() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(NewToken::parse("x", "1", &s(&["decide"]), &[Role::Manager], 90).is_err());
    assert!(NewToken::parse("x", "1", &s(&["decide"]), &[Role::Admin], 90).is_ok());
}

/// The served document is the committed one, so an API change shows in review. To update the
/// copy after an intended change: `BERTH_BLESS_OPENAPI=1 cargo test -p server --test http api::`.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_openapi_document_is_the_committed_one(pool: PgPool) {
    let app = spawn(pool, true).await;
    let res = browser()
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let served = res.text().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/openapi.json");
    if std::env::var_os("BERTH_BLESS_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        served == committed,
        "the API changed but docs/api/openapi.json did not: check the change, then run \
         BERTH_BLESS_OPENAPI=1 cargo test -p server --test http api:: and commit the file"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

/// The readable reference is rendered from the same document, with its own strict policy.
#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_reference_page_lists_every_operation(pool: PgPool) {
    let app = spawn(pool, true).await;
    let res = browser()
        .get(format!("{}/docs/api", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let html = res.text().await.unwrap();
    let doc: Value = serde_json::from_str(server::api::openapi_json()).unwrap();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(html.contains(&format!("id=\"op-{id}\"")), "{id} missing");
        }
    }
    assert!(html.contains("<code>POST /api/v1/requests</code>"));
    assert!(html.contains("id=\"schema-Request\""));
    assert!(!html.contains("<script"));
}
