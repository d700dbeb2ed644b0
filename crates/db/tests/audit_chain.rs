//! The tamper-evident history (issue 15): events are hash-chained per company by the
//! database, verification finds the first row that was changed, deleted or moved (done here as
//! the owner role, with the append-only trigger off), and the runtime role may only insert and
//! read events. Each test gets a fresh database.

mod common;
use common::person;

use std::borrow::Cow;

use berth_db::{
    audit_chain::{self, BreakReason, ChainHead, ChainReport, PublishedCheck},
    companies, events, requests, PgPool,
};
use berth_domain::{RequestSpec, Role};
use serde_json::json;
use sqlx::{migrate::Migrator, PgConnection};
use uuid::Uuid;

fn spec(name: &str) -> RequestSpec {
    RequestSpec::parse(name, "", "", "owner@seaview.example", "insight", "small").unwrap()
}

struct World {
    company: Uuid,
    env: Uuid,
    other_env: Uuid,
}

/// A company with two environments (each with its `request.submitted` event).
async fn world(pool: &PgPool, slug: &str) -> World {
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
async fn append(pool: &PgPool, env: Uuid, n: i64) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let id = events::append(&mut tx, env, None, None, "run.started", json!({ "n": n }))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// The company's events in chain order: (id, chain_seq).
async fn chain(pool: &PgPool, company: Uuid) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT id, chain_seq FROM events WHERE company_id = $1 ORDER BY chain_seq")
        .bind(company)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Runs statements as the owner with the append-only trigger off, as someone rewriting history
/// with the owner's rights would.
async fn tamper(pool: &PgPool, statements: &[&str]) {
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
async fn verify(pool: &PgPool, company: Uuid) -> ChainReport {
    let report = audit_chain::verify(pool, company).await.unwrap();
    let small = audit_chain::verify_batched(pool, company, 3).await.unwrap();
    assert_eq!(report, small, "batch size changed the verdict");
    report
}

fn broken(
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
async fn twelve(pool: &PgPool, w: &World) -> Vec<(i64, i64)> {
    for n in 0..10 {
        append(pool, if n % 2 == 0 { w.env } else { w.other_env }, n).await;
    }
    let c = chain(pool, w.company).await;
    assert_eq!(c.len(), 12);
    c
}

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

/// The role the application runs as in a split set-up; tools/lib.sh creates it (and lets the
/// owner `SET ROLE` to it). Roles belong to the cluster, not to the test's database.
const RUNTIME_ROLE: &str = "berth_app";

async fn become_runtime_role(conn: &mut PgConnection) {
    let (exists, member): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                    AND pg_has_role(current_user, $1, 'MEMBER')",
    )
    .bind(RUNTIME_ROLE)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let help = format!(
        "this test needs the role {RUNTIME_ROLE} and the test user to be a member of it; as a \
         superuser: CREATE ROLE {RUNTIME_ROLE} LOGIN PASSWORD '{RUNTIME_ROLE}'; \
         GRANT {RUNTIME_ROLE} TO <the DATABASE_URL user> (tools/lib.sh does)"
    );
    if !exists {
        sqlx::query(&format!("CREATE ROLE {RUNTIME_ROLE} NOLOGIN"))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{help} ({e})"));
    }
    if !member {
        sqlx::query(&format!("GRANT {RUNTIME_ROLE} TO current_user"))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{help} ({e})"));
    }
    sqlx::query(&format!("SET ROLE {RUNTIME_ROLE}"))
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// PostgreSQL's "insufficient privilege" (42501): permission denied, or must be owner.
fn refused(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, what: &str) {
    match result {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
        other => panic!("{what}: expected a permission error, got {other:?}"),
    }
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn the_runtime_role_may_only_insert_and_read_events(pool: PgPool) {
    let w = world(&pool, "seaview").await;
    let c = twelve(&pool, &w).await;

    // The owner cannot hand itself out as the runtime role.
    let owner: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(berth_db::grant_runtime_role(&pool, &owner).await.is_err());

    assert!(berth_db::can_disable_audit_triggers(&pool).await.unwrap());

    let mut conn = pool.acquire().await.unwrap();
    become_runtime_role(&mut conn).await;
    sqlx::query("RESET ROLE").execute(&mut *conn).await.unwrap();
    berth_db::grant_runtime_role(&pool, RUNTIME_ROLE)
        .await
        .unwrap();
    berth_db::grant_runtime_role(&pool, RUNTIME_ROLE)
        .await
        .expect("granting again changes nothing");
    become_runtime_role(&mut conn).await;
    assert!(!berth_db::can_disable_audit_triggers(&mut *conn)
        .await
        .unwrap());

    // What the application does: insert events (chained by the owner's trigger), read them,
    // change other tables.
    let inserted: i64 = sqlx::query_scalar(
        "INSERT INTO events (environment_id, kind) VALUES ($1, 'run.started') RETURNING chain_seq",
    )
    .bind(w.env)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(inserted, 13);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 13);
    sqlx::query("UPDATE environments SET description = 'still works' WHERE id = $1")
        .bind(w.env)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO auth_events (kind, subject) VALUES ('sign_in', 'maria')")
        .execute(&mut *conn)
        .await
        .unwrap();

    // What it may not: change or remove events, or turn off what guards them.
    for sql in [
        "UPDATE events SET kind = 'run.forged'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "ALTER TABLE events DISABLE TRIGGER events_no_update_delete",
        "ALTER TABLE events DISABLE TRIGGER events_chain_seal",
        "DROP TRIGGER events_chain_seal ON events",
        "CREATE TRIGGER events_zz_forge BEFORE INSERT ON events
             FOR EACH ROW EXECUTE FUNCTION events_append_only()",
        "SET session_replication_role = replica",
        "UPDATE auth_events SET reason = 'forged'",
        "DELETE FROM auth_events",
        "UPDATE audit_chain_heads SET seq = 0",
        "DELETE FROM audit_chain_heads",
        "INSERT INTO audit_chain_heads (company_id, genesis_at, genesis_hash, seq, head_hash)
             VALUES (gen_random_uuid(), now(), sha256(''), 0, sha256(''))",
        "CREATE TABLE events_copy (id bigint)",
    ] {
        refused(sqlx::query(sql).execute(&mut *conn).await, sql);
    }
    sqlx::query("RESET ROLE").execute(&mut *conn).await.unwrap();
    drop(conn);

    let ChainReport::Intact { events: 13, .. } = verify(&pool, w.company).await else {
        panic!("the runtime role's insert broke the chain");
    };
    assert_eq!(chain(&pool, w.company).await[..12], c[..]);
}

#[sqlx::test(migrator = "berth_db::MIGRATOR")]
async fn migrations_are_all_applied(pool: PgPool) {
    assert_eq!(
        berth_db::pending_migrations(&pool).await.unwrap(),
        Vec::<i64>::new()
    );
}

/// The migration chains the events an existing database already has, per company in id order.
#[sqlx::test(migrations = false)]
async fn the_migration_chains_existing_events(pool: PgPool) {
    const CHAIN: i64 = 20261204090000;
    let before = Migrator {
        migrations: Cow::Owned(
            berth_db::MIGRATOR
                .iter()
                .filter(|m| m.version < CHAIN)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    assert!(berth_db::pending_migrations(&pool)
        .await
        .unwrap()
        .contains(&CHAIN));

    let w = world(&pool, "seaview").await;
    let other = world(&pool, "harbour").await;
    for n in 0..20 {
        let env = [w.env, other.env, w.other_env][n % 3];
        sqlx::query(
            "INSERT INTO events (environment_id, kind, details) VALUES ($1, 'run.started', $2)",
        )
        .bind(env)
        .bind(json!({ "n": n, "text": "snow ☃" }))
        .execute(&pool)
        .await
        .unwrap();
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT e.id FROM events e JOIN environments v ON v.id = e.environment_id
         WHERE v.company_id = $1 ORDER BY e.id",
    )
    .bind(w.company)
    .fetch_all(&pool)
    .await
    .unwrap();

    berth_db::migrate(&pool).await.unwrap();
    let c = chain(&pool, w.company).await;
    assert_eq!(c.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    for company in [w.company, other.company] {
        let report = verify(&pool, company).await;
        assert!(report.is_intact(), "{report:?}");
    }

    // New events continue the backfilled chain.
    let id = append(&pool, w.env, 100).await;
    let ChainReport::Intact {
        events,
        last_event_id,
        ..
    } = verify(&pool, w.company).await
    else {
        panic!("the chain does not continue after the backfill");
    };
    assert_eq!((events, last_event_id), (ids.len() as i64 + 1, Some(id)));

    let heads: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_chain_heads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(heads, 2, "one genesis per company");
}
