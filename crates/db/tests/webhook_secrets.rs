//! Webhook signing secrets at rest: sealed when created with a key, sealed at start-up when
//! stored plain, sealed again when the key changes, and refused when no configured key opens
//! them. Each test gets a fresh database.

mod common;
use common::person;

use berth_db::sealing::{SealError, Sealer, SealingKey};
use berth_db::webhooks::{self, NewEndpoint, SecretsAtRest};
use berth_db::{DbError, PgPool};
use berth_domain::{EventType, Role, WebhookUrl};
use secrecy::ExposeSecret;
use uuid::Uuid;

const A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const C: &str = "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=";

fn key(text: &str) -> SealingKey {
    SealingKey::from_base64(text).unwrap()
}

/// Registers an endpoint; returns its id and its raw signing key (as shown once).
async fn register(pool: &PgPool, sealer: Option<&Sealer>) -> (Uuid, Vec<u8>) {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let ada = person(pool, "ada", &[Role::Admin]).await;
    let created = webhooks::create(
        pool,
        sealer,
        ada.user_id,
        &NewEndpoint {
            url: WebhookUrl::parse("https://hooks.example.com/x").unwrap(),
            description: String::new(),
            event_types: vec![EventType::RunStarted],
        },
    )
    .await
    .unwrap();
    let shown = created.secret.expose_secret().to_owned();
    let raw = STANDARD
        .decode(shown.strip_prefix(webhooks::SECRET_PREFIX).unwrap())
        .unwrap();
    (created.endpoint.id, raw)
}

/// The row's two secret columns: (plain, sealed).
async fn stored(pool: &PgPool, id: Uuid) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    sqlx::query_as("SELECT secret, secret_sealed FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The sealed column holds the key only sealed, and `sealer` opens it to `raw`.
async fn assert_sealed(pool: &PgPool, id: Uuid, raw: &[u8], sealer: &Sealer) {
    let (plain, sealed) = stored(pool, id).await;
    assert_eq!(plain, None, "no plain copy is left");
    let sealed = sealed.expect("sealed");
    assert!(sealer.is_current(&sealed), "sealed with the current key");
    assert!(!sealed.windows(raw.len()).any(|w| w == raw));
    assert_eq!(sealer.open(&sealed, id.as_bytes()).unwrap(), raw);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_secret_created_with_a_key_is_stored_sealed(pool: PgPool) {
    let sealer = Sealer::new(key(A), None);
    let (id, raw) = register(&pool, Some(&sealer)).await;
    assert_sealed(&pool, id, &raw, &sealer).await;
    assert_eq!(
        webhooks::seal_secrets(&pool, Some(&sealer)).await.unwrap(),
        SecretsAtRest {
            sealed_now: 0,
            plain: 0
        },
        "nothing to do"
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn plain_secrets_are_sealed_at_start_up_and_the_key_can_change(pool: PgPool) {
    let (id, raw) = register(&pool, None).await;
    assert_eq!(stored(&pool, id).await, (Some(raw.clone()), None));
    assert_eq!(
        webhooks::seal_secrets(&pool, None).await.unwrap(),
        SecretsAtRest {
            sealed_now: 0,
            plain: 1
        }
    );

    let first = Sealer::new(key(A), None);
    assert_eq!(
        webhooks::seal_secrets(&pool, Some(&first))
            .await
            .unwrap()
            .sealed_now,
        1
    );
    assert_sealed(&pool, id, &raw, &first).await;

    // Without a key the sealed secret could not sign: start-up stops.
    assert!(matches!(
        webhooks::seal_secrets(&pool, None).await,
        Err(DbError::Sealing(SealError::NoKey { sealed: 1 }))
    ));
    // A new key alone cannot open it; with the old one as the previous key it is sealed again.
    let unknown = webhooks::seal_secrets(&pool, Some(&Sealer::new(key(B), None))).await;
    assert!(
        matches!(unknown, Err(DbError::Sealing(SealError::UnknownKey { .. }))),
        "{unknown:?}"
    );
    let rotated = Sealer::new(key(B), Some(key(A)));
    assert_eq!(
        webhooks::seal_secrets(&pool, Some(&rotated))
            .await
            .unwrap()
            .sealed_now,
        1
    );
    assert_sealed(&pool, id, &raw, &Sealer::new(key(B), None)).await;
    // Once rotated, the old key may go.
    assert_eq!(
        webhooks::seal_secrets(&pool, Some(&Sealer::new(key(B), None)))
            .await
            .unwrap()
            .sealed_now,
        0
    );
    assert!(
        webhooks::seal_secrets(&pool, Some(&Sealer::new(key(C), None)))
            .await
            .is_err()
    );

    // The key lost: the recovery docs/security.md gives lets start-up through again.
    sqlx::query("DELETE FROM webhook_endpoints WHERE secret_sealed IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        webhooks::seal_secrets(&pool, Some(&Sealer::new(key(C), None)))
            .await
            .unwrap(),
        SecretsAtRest {
            sealed_now: 0,
            plain: 0
        }
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_sealed_secret_moved_to_another_endpoint_does_not_open(pool: PgPool) {
    let sealer = Sealer::new(key(A), None);
    let (first, _) = register(&pool, Some(&sealer)).await;
    let (second, _) = register(&pool, Some(&sealer)).await;
    sqlx::query(
        "UPDATE webhook_endpoints SET secret_sealed =
             (SELECT secret_sealed FROM webhook_endpoints WHERE id = $1)
         WHERE id = $2",
    )
    .bind(first)
    .bind(second)
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(
        webhooks::seal_secrets(&pool, Some(&sealer)).await,
        Err(DbError::Sealing(SealError::Damaged))
    ));
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_row_holds_its_secret_in_one_form(pool: PgPool) {
    let (id, _) = register(&pool, None).await;
    for sql in [
        "UPDATE webhook_endpoints SET secret = NULL WHERE id = $1",
        "UPDATE webhook_endpoints SET secret_sealed = secret WHERE id = $1",
    ] {
        let err = sqlx::query(sql).bind(id).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("webhook_endpoints_one_secret"),
            "{err}"
        );
    }
}
