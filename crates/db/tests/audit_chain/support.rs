//! Companies with environments, appending, tampering as the owner, and verifying.

use crate::common::person;

use berth_db::{
    audit_chain::{self, BreakReason, ChainReport},
    companies, events, requests, PgPool,
};
use berth_domain::{RequestSpec, Role};
use serde_json::json;
use uuid::Uuid;

pub fn spec(name: &str) -> RequestSpec {
    RequestSpec::parse(name, "", "", "owner@seaview.example", "insight", "small").unwrap()
}

pub struct World {
    pub company: Uuid,
    pub env: Uuid,
    pub other_env: Uuid,
}

/// A company with two environments (each with its `request.submitted` event).
pub async fn world(pool: &PgPool, slug: &str) -> World {
    let company = companies::ensure(pool, slug, slug).await.unwrap().id;
    let maria = person(pool, &format!("maria-{slug}"), &[Role::Manager]).await;
    let env = requests::submit(pool, company, &maria, &spec(&format!("Trucking {slug}")))
        .await
        .unwrap()
        .environment_id;
    let other_env = requests::submit(pool, company, &maria, &spec(&format!("Charging {slug}")))
        .await
        .unwrap()
        .environment_id;
    World {
        company,
        env,
        other_env,
    }
}

/// Appends one event through `events::append`, in its own transaction.
pub async fn append(pool: &PgPool, env: Uuid, n: i64) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let id = events::append(&mut tx, env, None, None, "run.started", json!({ "n": n }))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// The company's events in chain order: (id, chain_seq).
pub async fn chain(pool: &PgPool, company: Uuid) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT id, chain_seq FROM events WHERE company_id = $1 ORDER BY chain_seq")
        .bind(company)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Runs statements as the owner with the append-only trigger off, as someone rewriting history
/// with the owner's rights would.
pub async fn tamper(pool: &PgPool, statements: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Verifies with the default batch and with batches of 3 (so that breaks fall inside and at the
/// edge of a batch); both must agree.
pub async fn verify(pool: &PgPool, company: Uuid) -> ChainReport {
    let report = audit_chain::verify(pool, company).await.unwrap();
    let small = audit_chain::verify_batched(pool, company, 3).await.unwrap();
    assert_eq!(report, small, "batch size changed the verdict");
    report
}

pub fn broken(
    at_seq: i64,
    at_event_id: Option<i64>,
    reason: BreakReason,
    last_intact_event_id: Option<i64>,
) -> ChainReport {
    ChainReport::Broken {
        at_seq,
        at_event_id,
        reason,
        intact_events: at_seq - 1,
        last_intact_event_id,
    }
}

/// A world with 12 events in its chain: 2 submissions, then 10 appended alternately to both
/// environments. Returns the chain (id, seq) in order.
pub async fn twelve(pool: &PgPool, w: &World) -> Vec<(i64, i64)> {
    for n in 0..10 {
        append(pool, if n % 2 == 0 { w.env } else { w.other_env }, n).await;
    }
    let c = chain(pool, w.company).await;
    assert_eq!(c.len(), 12);
    c
}
