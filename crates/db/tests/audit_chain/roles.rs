//! What the runtime role may do to events, and the migration that chains existing events.

use std::borrow::Cow;

use berth_db::{audit_chain::ChainReport, PgPool};
use berth_testkit::db::{ensure_runtime_role, RUNTIME_ROLE};
use serde_json::json;
use sqlx::{migrate::Migrator, PgConnection};

use super::support::*;

/// Acts as the runtime role on `conn` from here on.
async fn become_runtime_role(conn: &mut PgConnection) {
    ensure_runtime_role(&mut *conn).await;
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
