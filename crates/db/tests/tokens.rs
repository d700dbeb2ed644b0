//! API tokens and service accounts as stored: a holder revokes only their own tokens, service
//! accounts are named apart and disabling one stops its tokens, and the company's token maximum
//! is stored with an audit record of every change.

mod common;
use common::person;

use berth_db::{
    audit::{self, AuthEventKind},
    companies, settings,
    tokens::{self, ServiceAccount},
    DbError, PgPool,
};
use berth_domain::{
    token::{NewToken, PresentedSecret, TokenKind, DEFAULT_MAX_TOKEN_DAYS},
    Role,
};
use secrecy::ExposeSecret;

fn new_token(name: &str, days: &str, scopes: &[&str], roles: &[Role], max: u32) -> NewToken {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    NewToken::parse(name, days, &scopes, roles, max).unwrap()
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_holder_revokes_only_their_own_tokens(pool: PgPool) {
    let maria = person(&pool, "maria", &[Role::Manager]).await;
    let mark = person(&pool, "mark", &[Role::Manager]).await;
    let new = new_token("ci", "30", &["read"], &maria.roles, 90);
    let issued = tokens::issue(
        &pool,
        maria.user_id,
        maria.user_id,
        TokenKind::Personal,
        &new,
    )
    .await
    .unwrap();
    let id = issued.token.id;
    // Someone else's id for it: nothing happens.
    assert!(!tokens::revoke(&pool, id, mark.user_id, mark.user_id)
        .await
        .unwrap());
    assert!(tokens::get(&pool, id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(tokens::revoke(&pool, id, maria.user_id, maria.user_id)
        .await
        .unwrap());
    // Twice: there is no live token to revoke any more.
    assert!(!tokens::revoke(&pool, id, maria.user_id, maria.user_id)
        .await
        .unwrap());
    let listed = tokens::list(&pool, maria.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
    assert!(tokens::list(&pool, mark.user_id).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn service_accounts_are_listed_named_apart_and_disabled(pool: PgPool) {
    let ada = person(&pool, "ada", &[Role::Admin]).await;
    let ci = tokens::create_service_account(&pool, "CI pipeline", &[Role::Manager], ada.user_id)
        .await
        .unwrap();
    tokens::create_service_account(&pool, "Auditor bot", &[Role::Auditor], ada.user_id)
        .await
        .unwrap();
    // The same name in other letters' case is taken, on the name field.
    match tokens::create_service_account(&pool, "ci PIPELINE", &[Role::Admin], ada.user_id).await {
        Err(DbError::Taken { field, message }) => {
            assert_eq!(field, "name");
            assert!(message.contains("ci PIPELINE"), "{message}");
        }
        other => panic!("expected a name clash, got {other:?}"),
    }
    let listed: Vec<ServiceAccount> = tokens::list_service_accounts(&pool).await.unwrap();
    let names: Vec<_> = listed
        .iter()
        .map(|a| a.user.display_name.as_str())
        .collect();
    assert_eq!(names, ["Auditor bot", "CI pipeline"]);
    assert_eq!(listed[1].created_by, "User ada");
    assert_eq!(listed[1].user.roles, [Role::Manager]);
    // A person is no service account.
    assert!(tokens::service_account(&pool, ada.user_id)
        .await
        .unwrap()
        .is_none());
    assert!(
        !tokens::set_service_account_disabled(&pool, ada.user_id, true)
            .await
            .unwrap()
    );

    let new = new_token("deploys", "7", &["read"], &ci.roles, 90);
    let issued = tokens::issue(&pool, ci.id, ada.user_id, TokenKind::ServiceAccount, &new)
        .await
        .unwrap();
    let (_, secret) = PresentedSecret::parse(issued.secret.expose_secret()).unwrap();
    let bearer = tokens::authenticate(&pool, &secret, Some("127.0.0.1"))
        .await
        .unwrap()
        .expect("a live token");
    assert_eq!(bearer.user.id, ci.id);

    assert!(tokens::set_service_account_disabled(&pool, ci.id, true)
        .await
        .unwrap());
    // Already disabled: no change.
    assert!(!tokens::set_service_account_disabled(&pool, ci.id, true)
        .await
        .unwrap());
    let account = tokens::service_account(&pool, ci.id)
        .await
        .unwrap()
        .unwrap();
    assert!(account.disabled_at.is_some());
    assert!(tokens::authenticate(&pool, &secret, None)
        .await
        .unwrap()
        .is_none());
    assert!(tokens::set_service_account_disabled(&pool, ci.id, false)
        .await
        .unwrap());
    assert!(tokens::authenticate(&pool, &secret, None)
        .await
        .unwrap()
        .is_some());
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_token_maximum_is_stored_per_company_and_audited(pool: PgPool) {
    let seaview = companies::ensure(&pool, "SeaView", "seaview")
        .await
        .unwrap();
    let other = companies::ensure(&pool, "Other", "other").await.unwrap();
    let ada = person(&pool, "ada", &[Role::Admin]).await;

    let before = settings::get(&pool, seaview.id).await.unwrap();
    assert_eq!(before.max_token_days, DEFAULT_MAX_TOKEN_DAYS);
    assert_eq!(before.updated_by, None);

    let previous =
        settings::set_max_token_days(&pool, seaview.id, 180, ada.user_id, Some("10.0.0.7".into()))
            .await
            .unwrap();
    assert_eq!(previous, DEFAULT_MAX_TOKEN_DAYS);
    assert_eq!(
        settings::max_token_days(&pool, seaview.id).await.unwrap(),
        180
    );
    assert_eq!(
        settings::max_token_days(&pool, other.id).await.unwrap(),
        DEFAULT_MAX_TOKEN_DAYS
    );
    let after = settings::get(&pool, seaview.id).await.unwrap();
    assert_eq!(after.updated_by.as_deref(), Some("User ada"));
    assert!(after.updated_at.is_some());

    assert_eq!(
        settings::set_max_token_days(&pool, seaview.id, 30, ada.user_id, None)
            .await
            .unwrap(),
        180
    );
    let changes = audit::recent(&pool, AuthEventKind::SettingChanged, 10)
        .await
        .unwrap();
    assert_eq!(
        changes,
        [
            (
                Some(ada.user_id),
                None,
                Some("max_token_days: 180 -> 30".into())
            ),
            (
                Some(ada.user_id),
                Some("10.0.0.7".into()),
                Some("max_token_days: 90 -> 180".into())
            ),
        ]
    );
    // The database holds the ceiling too.
    assert!(
        settings::set_max_token_days(&pool, seaview.id, 366, ada.user_id, None)
            .await
            .is_err()
    );
    assert_eq!(
        settings::max_token_days(&pool, seaview.id).await.unwrap(),
        30
    );
}
