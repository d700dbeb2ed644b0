//! Appended events, one at a time or concurrently, form an intact chain per company.

use berth_db::{
    audit_chain::{self, ChainHead, ChainReport, PublishedCheck},
    events, PgPool,
};
use serde_json::json;
use uuid::Uuid;

use super::support::*;

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn appended_events_form_an_intact_chain_per_company(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let other = world(&pool, "harbour").await;
    assert_eq!(
        audit_chain::verify(&pool, Uuid::new_v4()).await.unwrap(),
        ChainReport::Intact {
            events: 0,
            head: None,
            last_event_id: None
        },
        "a company without events has an empty chain"
    );

    let mut last = 0;
    for n in 0..10 {
        last = append(&pool, if n % 2 == 0 { w.env } else { other.env }, n).await;
    }
    // Inserted directly (as tests and benchmarks do), several rows in one statement: the
    // trigger chains them too, overwriting whatever the writer put in the chain's columns.
    sqlx::query(
        "INSERT INTO events (environment_id, kind, details, chain_seq, hash)
         SELECT $1, 'step.started', jsonb_build_object('i', i), 1, '\\x00'
         FROM generate_series(1, 5) i",
    )
    .bind(w.other_env)
    .execute(&pool)
    .await
    .unwrap();

    let c = chain(&pool, w.company).await;
    assert_eq!(c.len(), 2 + 5 + 5);
    assert_eq!(
        c.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let head = audit_chain::head(&pool, w.company).await.unwrap().unwrap();
    assert_eq!(head.seq, 12);
    assert_eq!(head.hash.len(), 64);
    assert_eq!(
        verify(&pool, w.company).await,
        ChainReport::Intact {
            events: 12,
            head: Some(head.clone()),
            last_event_id: Some(c[11].0)
        }
    );

    // The other company has its own chain, from its own genesis.
    let oc = chain(&pool, other.company).await;
    assert_eq!(oc.len(), 2 + 5);
    assert_eq!(oc.last().unwrap().0, last);
    let ChainReport::Intact { events: 7, .. } = verify(&pool, other.company).await else {
        panic!("the other company's chain is not intact");
    };

    // A published head is still in the chain after more events; a made-up one is not.
    append(&pool, w.env, 99).await;
    assert_eq!(
        audit_chain::check_published(&pool, w.company, &head)
            .await
            .unwrap(),
        PublishedCheck::Matches
    );
    let forged = ChainHead {
        seq: 12,
        hash: "00".repeat(32),
    };
    assert!(matches!(
        audit_chain::check_published(&pool, w.company, &forged)
            .await
            .unwrap(),
        PublishedCheck::Differs { .. }
    ));
    let ahead = ChainHead {
        seq: 1000,
        hash: head.hash.clone(),
    };
    assert_eq!(
        audit_chain::check_published(&pool, w.company, &ahead)
            .await
            .unwrap(),
        PublishedCheck::Missing
    );
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn concurrent_appends_keep_the_chain_intact(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    // Six writers, each appending 15 events in transactions that stay open a moment after the
    // insert, so that they overlap: identity values are handed out in another order than the
    // chain's, and each writer must wait for the one before it to commit.
    let writers: Vec<_> = (0..6)
        .map(|t| {
            let pool = pool.clone();
            let env = if t % 2 == 0 { w.env } else { w.other_env };
            tokio::spawn(async move {
                for n in 0..15 {
                    let mut tx = pool.begin().await.unwrap();
                    events::append(
                        &mut tx,
                        env,
                        None,
                        None,
                        "step.started",
                        json!({ "writer": t, "n": n }),
                    )
                    .await
                    .unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }

    let c = chain(&pool, w.company).await;
    assert_eq!(c.len(), 2 + 6 * 15);
    let ChainReport::Intact {
        events: 92,
        last_event_id,
        ..
    } = verify(&pool, w.company).await
    else {
        panic!("concurrent appends broke the chain");
    };
    assert_eq!(last_event_id, Some(c.last().unwrap().0));
}
