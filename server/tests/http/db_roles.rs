//! Berth serving as the runtime role `server migrate` grants (docs/security.md, "Database
//! roles"): enough to sign in, keep a session and request an environment; not enough to change
//! the history, nor to apply a pending migration.

use berth_db::{audit_chain::ChainReport, PgPool};
use reqwest::StatusCode;
use sqlx::{postgres::PgPoolOptions, Executor};

use berth_testkit::db::{ensure_runtime_role, RUNTIME_ROLE};

use crate::helpers::{spawn, try_spawn_with};

/// A pool on the test's database whose connections act as the runtime role (`SET ROLE`: the
/// test user is a member of it, as tools/lib.sh sets up).
async fn as_runtime_role(owner: &PgPool) -> PgPool {
    ensure_runtime_role(&mut owner.acquire().await.unwrap()).await;
    PgPoolOptions::new()
        .max_connections(10)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET ROLE {RUNTIME_ROLE}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect_with(owner.connect_options().as_ref().clone())
        .await
        .unwrap()
}

fn refused(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, what: &str) {
    match result {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
        other => panic!("{what}: expected a permission error, got {other:?}"),
    }
}

#[sqlx::test(migrations = false)]
async fn berth_serves_as_the_runtime_role_which_cannot_change_the_history(owner: PgPool) {
    // `server migrate` as the owner, then Berth as the runtime role: it must start without
    // creating anything (the session table is there already).
    server::schema::migrate(&owner, Some(RUNTIME_ROLE))
        .await
        .unwrap();
    let runtime = as_runtime_role(&owner).await;
    assert!(!berth_db::can_disable_audit_triggers(&runtime)
        .await
        .unwrap());
    assert!(!berth_db::can_migrate(&runtime).await.unwrap());
    let app = spawn(runtime.clone(), true).await;

    // Signing in writes the session row and the sign-in trail.
    let maria = app.signed_in("maria").await;
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&runtime)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    let sign_ins: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth_events WHERE subject = 'maria'")
            .fetch_one(&runtime)
            .await
            .unwrap();
    assert!(sign_ins >= 1);

    // A request, with its event on the chain.
    let request = app.submit(&maria, "Trucking").await;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e JOIN requests r ON r.environment_id = e.environment_id
         WHERE r.id = $1",
    )
    .bind(request)
    .fetch_one(&runtime)
    .await
    .unwrap();
    assert!(events >= 1);
    let who = app.call(&maria, "whoami", &[]).await.text().await.unwrap();
    assert!(who.contains("Maria Manager"), "{who}");
    assert_eq!(app.sign_out(&maria).await.status(), StatusCode::SEE_OTHER);

    // What the runtime role may not do to the history.
    for sql in [
        "UPDATE events SET kind = 'request.forged'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "UPDATE auth_events SET reason = 'forged'",
        "DELETE FROM auth_events",
        "TRUNCATE tower_sessions.session",
    ] {
        refused(sqlx::query(sql).execute(&runtime).await, sql);
    }
    let company: uuid::Uuid = sqlx::query_scalar("SELECT id FROM companies")
        .fetch_one(&owner)
        .await
        .unwrap();
    let report = berth_db::audit_chain::verify(&owner, company)
        .await
        .unwrap();
    assert!(matches!(report, ChainReport::Intact { .. }), "{report:?}");
}

#[sqlx::test(migrations = false)]
async fn a_runtime_role_refuses_to_start_while_a_migration_is_pending(owner: PgPool) {
    server::schema::migrate(&owner, Some(RUNTIME_ROLE))
        .await
        .unwrap();
    // As if this build carried a migration `server migrate` has not applied yet.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&owner)
    .await
    .unwrap();
    let runtime = as_runtime_role(&owner).await;
    let Err(e) = try_spawn_with(runtime, true, |_| {}).await else {
        panic!("started with a migration pending");
    };
    let message = format!("{e:#}");
    assert!(
        message.contains("1 database migration(s) are pending")
            && message.contains("server migrate"),
        "{message}"
    );
}

#[sqlx::test(migrations = false)]
async fn the_worker_waits_for_server_migrate(owner: PgPool) {
    use std::time::Duration;
    let runtime = as_runtime_role(&owner).await;
    // An empty database: the runtime role can neither migrate nor read anything yet.
    let waiting = tokio::spawn(async move { server::schema::wait_until_current(&runtime).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "{:?}", waiting.await);
    // Migrated, not yet granted (the migration record is not readable): still waiting.
    server::schema::migrate(&owner, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert!(!waiting.is_finished(), "{:?}", waiting.await);
    // Granted: it goes on.
    server::schema::migrate(&owner, Some(RUNTIME_ROLE))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("still waiting after the grant")
        .unwrap()
        .unwrap();
}
