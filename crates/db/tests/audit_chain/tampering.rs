//! Verification finds the first event that was edited, deleted or moved, and a changed
//! genesis or head.

use berth_db::{
    audit_chain::{self, BreakReason, ChainReport, PublishedCheck},
    PgPool,
};

use super::support::*;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_edited_event_is_found_at_that_event(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;
    let (fifth, fourth) = (c[4].0, c[3].0);

    tamper(
        &pool,
        &[&format!(
            "UPDATE events SET details = '{{\"n\": 1000}}' WHERE id = {fifth}"
        )],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        broken(5, Some(fifth), BreakReason::HashMismatch, Some(fourth))
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn an_edit_with_its_hash_recomputed_breaks_the_next_link(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;
    let (fifth, sixth) = (c[4].0, c[5].0);

    // Whoever knows the format can rehash the edited row; the next row still links to the old
    // hash.
    tamper(
        &pool,
        &[
            &format!("UPDATE events SET kind = 'run.forged' WHERE id = {fifth}"),
            &format!(
                "UPDATE events e SET hash = sha256(e.prev_hash || events_canonical(e))
                 WHERE id = {fifth}"
            ),
        ],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        broken(6, Some(sixth), BreakReason::LinkMismatch, Some(fifth))
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_deleted_event_is_found(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;
    let (seventh, sixth) = (c[6].0, c[5].0);

    tamper(
        &pool,
        &[&format!("DELETE FROM events WHERE id = {seventh}")],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        broken(7, Some(c[7].0), BreakReason::Gap, Some(sixth))
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn events_deleted_from_the_end_are_found(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;
    let published = audit_chain::head(&pool, w.company).await.unwrap().unwrap();

    tamper(
        &pool,
        &[&format!(
            "DELETE FROM events WHERE id IN ({}, {})",
            c[10].0, c[11].0
        )],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        broken(11, None, BreakReason::Gap, Some(c[9].0))
    );

    // Moving the recorded head back as well leaves a chain that holds: the head published
    // before is what shows the loss.
    tamper(
        &pool,
        &[&format!(
            "UPDATE audit_chain_heads h SET seq = 10,
                 head_hash = (SELECT hash FROM events WHERE id = {})
             WHERE company_id = '{}'",
            c[9].0, w.company
        )],
    )
    .await;
    assert!(verify(&pool, w.company).await.is_intact());
    assert_eq!(
        audit_chain::check_published(&pool, w.company, &published)
            .await
            .unwrap(),
        PublishedCheck::Missing
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn swapped_events_are_found(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;
    let (fourth, fifth, third) = (c[3].0, c[4].0, c[2].0);

    // The fourth and fifth events trade places in the chain's order.
    tamper(
        &pool,
        &[
            &format!("UPDATE events SET chain_seq = 1000 WHERE id = {fourth}"),
            &format!("UPDATE events SET chain_seq = 4 WHERE id = {fifth}"),
            &format!("UPDATE events SET chain_seq = 5 WHERE id = {fourth}"),
        ],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        broken(4, Some(fifth), BreakReason::LinkMismatch, Some(third))
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn a_changed_genesis_or_head_is_found(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;

    tamper(
        &pool,
        &[&format!(
            "UPDATE audit_chain_heads SET head_hash = sha256('x') WHERE company_id = '{}'",
            w.company
        )],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        ChainReport::Broken {
            at_seq: 12,
            at_event_id: Some(c[11].0),
            reason: BreakReason::HeadMismatch,
            intact_events: 12,
            last_intact_event_id: Some(c[11].0),
        }
    );

    tamper(
        &pool,
        &[&format!(
            "UPDATE audit_chain_heads SET genesis_at = genesis_at - interval '1 day'
             WHERE company_id = '{}'",
            w.company
        )],
    )
    .await;
    assert_eq!(
        verify(&pool, w.company).await,
        ChainReport::Broken {
            at_seq: 0,
            at_event_id: None,
            reason: BreakReason::GenesisMismatch,
            intact_events: 0,
            last_intact_event_id: None,
        }
    );
}
