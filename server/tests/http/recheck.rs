//! A single sign-on sign-in confirmed at the provider when its roles are due: changed groups
//! change the roles (recorded), a refusal ends the sign-in, an unreachable provider is borne
//! for twice the interval and no longer. The provider here answers refresh and UserInfo over
//! HTTP; the relying party's side against the real local provider is in berth-auth's tests.

use std::sync::{Arc, Mutex};

use axum::{
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use berth_db::{
    audit::{recent, AuthEventKind},
    sign_ins::{self, Method, NewSignIn, StoredTokens},
    users::{self, Identity},
    PgPool,
};
use berth_domain::Role;
use secrecy::SecretString;
use server::sessions::ProviderCheck;

use crate::helpers::fake_provider;

/// What the provider says, changed by the test as it goes.
#[derive(Default)]
struct Says {
    groups: Vec<String>,
    /// The token endpoint refuses the refresh (`invalid_grant`).
    refuse: bool,
    /// The token endpoint is down (503).
    down: bool,
    refreshes: u32,
}

async fn provider(says: Arc<Mutex<Says>>) -> String {
    let token = {
        let says = says.clone();
        move || {
            let says = says.clone();
            async move {
                let mut s = says.lock().unwrap();
                if s.down {
                    return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
                }
                if s.refuse {
                    let body = serde_json::json!({ "error": "invalid_grant" });
                    return (StatusCode::BAD_REQUEST, Json(body)).into_response();
                }
                s.refreshes += 1;
                Json(serde_json::json!({
                    "access_token": format!("at-{}", s.refreshes),
                    "refresh_token": format!("rt-{}", s.refreshes),
                    "token_type": "Bearer",
                    "expires_in": 600,
                }))
                .into_response()
            }
        }
    };
    let me = {
        let says = says.clone();
        move || {
            let groups = says.lock().unwrap().groups.clone();
            async move { Json(serde_json::json!({ "sub": "sam", "groups": groups })) }
        }
    };
    fake_provider(
        Router::new()
            .route("/token", post(token))
            .route("/me", get(me)),
    )
    .await
}

fn settings(issuer: &str) -> berth_auth::OidcSettings {
    use berth_auth::settings::env;
    let values = [
        (env::ISSUER, issuer.to_owned()),
        (env::CLIENT_ID, "berth".to_owned()),
        (env::CLIENT_SECRET, "secret".to_owned()),
        (
            env::REDIRECT_URL,
            "http://127.0.0.1:9/auth/callback".to_owned(),
        ),
        (
            env::ROLE_MAP,
            "berth-managers=manager;berth-admins=admin".to_owned(),
        ),
        (env::RECHECK_SECS, "300".to_owned()),
    ];
    berth_auth::OidcSettings::from_lookup(|name| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

async fn age(pool: &PgPool, id: uuid::Uuid, minutes: i32) {
    sqlx::query(
        "UPDATE sign_ins SET roles_checked_at = now() - make_interval(mins => $2),
                recheck_claimed_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(minutes)
    .execute(pool)
    .await
    .unwrap();
}

async fn stored_refresh(pool: &PgPool, id: uuid::Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT refresh_token FROM sign_ins WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn roles_follow_the_provider_during_a_session(pool: PgPool) {
    let says = Arc::new(Mutex::new(Says {
        groups: vec!["berth-managers".into(), "berth-admins".into()],
        ..Says::default()
    }));
    let issuer = provider(says.clone()).await;
    let check = ProviderCheck {
        pool: pool.clone(),
        oidc: Arc::new(berth_auth::LazyOidcClient::new(settings(&issuer))),
    };
    let sam = users::upsert(
        &pool,
        &Identity {
            issuer: &issuer,
            subject: "sam",
            display_name: "Sam Superuser",
            email: None,
            roles: &[Role::Manager, Role::Admin],
        },
    )
    .await
    .unwrap();
    let start = |refresh: &str| NewSignIn {
        user_id: sam.id,
        method: Method::Sso,
        lifetime: std::time::Duration::from_secs(3600),
        source_addr: None,
        tokens: Some(StoredTokens {
            access_token: SecretString::from("at-0"),
            refresh_token: Some(SecretString::from(refresh.to_owned())),
            access_expires_at: None,
        }),
    };
    let id = sign_ins::start(&pool, start("rt-0")).await.unwrap();
    let confirm = |id| {
        let (check, pool) = (&check, pool.clone());
        async move {
            let current = sign_ins::current(&pool, id).await.unwrap().unwrap();
            app::api::guard::SignInCheck::confirm(check, current)
                .await
                .unwrap()
        }
    };

    // Confirmed at sign-in: the provider is not asked again before the interval.
    let user = confirm(id).await.unwrap();
    assert_eq!(user.roles, [Role::Admin, Role::Manager]);
    assert_eq!(says.lock().unwrap().refreshes, 0);

    // Due, and the provider took the admins' group away: the role goes at this call.
    age(&pool, id, 6).await;
    says.lock().unwrap().groups = vec!["berth-managers".into()];
    let user = confirm(id).await.unwrap();
    assert_eq!(user.roles, [Role::Manager]);
    assert_eq!(
        users::get(&pool, sam.id).await.unwrap().unwrap().roles,
        [Role::Manager]
    );
    assert_eq!(
        stored_refresh(&pool, id).await.as_deref(),
        Some("rt-1"),
        "the rotated token is kept"
    );
    let changes = recent(&pool, AuthEventKind::RolesChanged, 5).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert!(
        changes[0]
            .2
            .as_deref()
            .unwrap()
            .contains("[admin, manager] to [manager]"),
        "{changes:?}"
    );
    // Not due again right after.
    confirm(id).await.unwrap();
    assert_eq!(says.lock().unwrap().refreshes, 1);

    // Unreachable: borne while the roles are younger than twice the interval…
    says.lock().unwrap().down = true;
    age(&pool, id, 6).await;
    assert!(confirm(id).await.is_some());
    // …and no longer.
    age(&pool, id, 11).await;
    assert!(confirm(id).await.is_none());
    assert!(sign_ins::current(&pool, id).await.unwrap().is_none());
    assert_eq!(
        stored_refresh(&pool, id).await,
        None,
        "an ended sign-in keeps no token"
    );

    // Refused: the sign-in ends at once, recorded.
    says.lock().unwrap().down = false;
    says.lock().unwrap().refuse = true;
    let id = sign_ins::start(&pool, start("rt-9")).await.unwrap();
    age(&pool, id, 6).await;
    assert!(confirm(id).await.is_none());
    let ended: (String,) = sqlx::query_as("SELECT ended_reason FROM sign_ins WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ended.0, "refused by the identity provider");
    let events = recent(&pool, AuthEventKind::SessionEnded, 5).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e.0 == Some(sam.id)));
}
