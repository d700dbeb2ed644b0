//! Idempotency keys as stored: a key answers its first result again, refuses another request,
//! and a claim whose server stopped before answering is taken over once it is abandoned.

mod common;
use common::person;

use berth_db::{
    idempotency::{self, Claim, ABANDONED_MINUTES},
    tokens, PgPool,
};
use berth_domain::{
    token::{NewToken, TokenKind},
    Role,
};

async fn token(pool: &PgPool) -> uuid::Uuid {
    let maria = person(pool, "maria", &[Role::Manager]).await;
    let new = NewToken::parse("ci", "30", &["request".to_string()], &maria.roles, 90).unwrap();
    tokens::issue(
        pool,
        maria.user_id,
        maria.user_id,
        TokenKind::Personal,
        &new,
    )
    .await
    .unwrap()
    .token
    .id
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_key_replays_its_answer_and_refuses_another_request(pool: PgPool) {
    let token = token(&pool).await;
    // Two requests' SHA-256 (their values do not matter here).
    let (asked, other) = (&[1u8; 32][..], &[2u8; 32][..]);
    assert_eq!(
        idempotency::claim(&pool, token, "k1", asked).await.unwrap(),
        Claim::New
    );
    assert_eq!(
        idempotency::claim(&pool, token, "k1", asked).await.unwrap(),
        Claim::InProgress
    );
    let body = serde_json::json!({"id": "r1"});
    idempotency::complete(&pool, token, "k1", 201, &body, Some("/api/v1/requests/r1"))
        .await
        .unwrap();
    assert_eq!(
        idempotency::claim(&pool, token, "k1", asked).await.unwrap(),
        Claim::Replay {
            status: 201,
            response: body,
            location: Some("/api/v1/requests/r1".into())
        }
    );
    assert_eq!(
        idempotency::claim(&pool, token, "k1", other).await.unwrap(),
        Claim::Mismatch
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_abandoned_claim_is_taken_over_and_an_answered_one_is_not(pool: PgPool) {
    let token = token(&pool).await;
    // The request's SHA-256 (its value does not matter here).
    let asked = &[1u8; 32][..];
    for key in ["stopped", "answered"] {
        assert_eq!(
            idempotency::claim(&pool, token, key, asked).await.unwrap(),
            Claim::New
        );
    }
    idempotency::complete(&pool, token, "answered", 201, &serde_json::json!({}), None)
        .await
        .unwrap();
    // Both claims were made just over the abandonment time ago.
    sqlx::query(
        "UPDATE api_idempotency SET created_at = now() - make_interval(mins => $1) - interval '1 second'",
    )
    .bind(ABANDONED_MINUTES)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        idempotency::claim(&pool, token, "stopped", asked)
            .await
            .unwrap(),
        Claim::New,
        "the unanswered claim is abandoned: the retry does the work"
    );
    assert!(matches!(
        idempotency::claim(&pool, token, "answered", asked)
            .await
            .unwrap(),
        Claim::Replay { status: 201, .. }
    ));
}
