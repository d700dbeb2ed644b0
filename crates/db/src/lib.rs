//! Berth's PostgreSQL storage. Functions take a pool or a transaction so the caller owns the
//! transaction; every change writes its event in the same transaction as the change.

pub mod audit;
pub mod audit_chain;
pub mod companies;
pub mod events;
pub mod history;
pub mod idempotency;
pub mod lists;
pub mod mail;
mod outbox;
pub mod rate_limits;
pub mod requests;
pub mod sealing;
pub mod settings;
pub mod sign_ins;
pub mod tokens;
pub mod users;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
pub use sqlx::PgPool;
use std::time::Duration;

/// Errors from storage. `Conflict` and `Transition` carry text safe to show to users.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Taken {
        /// The form field the clash is about (`name` or `slug`).
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// Form fields that do not hold (each names its field).
    #[error(transparent)]
    Invalid(berth_domain::SpecErrors),
    #[error(transparent)]
    Transition(#[from] berth_domain::TransitionError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A sealed secret that the configured keys cannot open (or a key that cannot seal).
    #[error(transparent)]
    Sealing(#[from] crate::sealing::SealError),
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Migrations embedded at compile time from the workspace's `migrations/` folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Opens a pool; `connect_timeout` bounds how long start-up waits for the database.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// Begins a transaction acting for `actor`: when the actor came with an API token, every event
/// the transaction writes names that token (the `events.token_id` column's default reads it).
pub async fn begin_as(
    pool: &PgPool,
    actor: &berth_domain::Actor,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, DbError> {
    let mut tx = pool.begin().await?;
    if let Some(token) = actor.token_id {
        sqlx::query!(
            "SELECT set_config('berth.token_id', $1, true) AS set",
            token.to_string()
        )
        .fetch_one(&mut *tx)
        .await?;
    }
    Ok(tx)
}

/// Applies pending migrations (idempotent).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Migrations this build carries that the database has not applied, or applied from other
/// content: for a process that runs as the runtime role, which cannot apply them, to refuse to
/// start until `server migrate` has run as the owner.
pub async fn pending_migrations(pool: &PgPool) -> Result<Vec<i64>, DbError> {
    let recorded =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "recorded!""#)
            .fetch_one(pool)
            .await?;
    // sqlx's own table, absent from the schema the query macros are checked against.
    let applied: Vec<(i64, Vec<u8>)> = if recorded {
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .filter(|m| {
            !applied
                .iter()
                .any(|(version, checksum)| *version == m.version && checksum[..] == m.checksum[..])
        })
        .map(|m| m.version)
        .collect())
}

/// Gives `role`, the role the application runs as when migrations run as another role that
/// owns the tables, what it needs: reading and writing Berth's tables, but only inserting into
/// and reading the audit trails (`events`, `auth_events`), only reading the chain heads and the
/// migration record, never TRUNCATE or TRIGGER. Refuses a role that owns a table, has the
/// owner's rights, is a superuser or may create roles (an owner can disable the audit
/// triggers). Idempotent; run as the owner after every [`migrate`] (the SQL function
/// `berth_grant_runtime_role` in `migrations/20261204090000_audit_chain.sql`).
pub async fn grant_runtime_role(pool: &PgPool, role: &str) -> Result<(), DbError> {
    sqlx::query!("SELECT berth_grant_runtime_role($1)", role)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether the role this connection acts as could switch off the audit trail's triggers: it
/// owns `events`, has its owner's rights, or is a superuser. True when migrations and the
/// application share one role (the server warns about it at start-up).
pub async fn can_disable_audit_triggers<'c>(
    db: impl sqlx::PgExecutor<'c>,
) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper AS "can!"
           FROM pg_class c, pg_roles r
           WHERE c.oid = 'events'::regclass AND r.rolname = current_user"#
    )
    .fetch_one(db)
    .await?)
}

/// Whether the role this connection acts as may apply migrations: it has the rights of the
/// tables' owner or is a superuser, or, on a database without Berth's tables yet, may create in
/// the schema. False for a runtime role, so that start-up asks for `server migrate` as the owner
/// rather than failing inside a migration.
pub async fn can_migrate(pool: &PgPool) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(
               (SELECT pg_has_role(current_user, c.relowner, 'USAGE')
                FROM pg_class c WHERE c.oid = to_regclass('events'))
               OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
               has_schema_privilege(current_schema(), 'CREATE'),
               false) AS "can!""#
    )
    .fetch_one(pool)
    .await?)
}

/// Whether `name` (`schema.table`) is a relation this connection's role can see: a table
/// another component creates (the session store's) is only created when missing, since a
/// runtime role may not create it.
pub async fn relation_exists(pool: &PgPool, name: &str) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT to_regclass($1) IS NOT NULL AS "exists!""#, name)
            .fetch_one(pool)
            .await?,
    )
}

/// True when the database answers a trivial query (the `/readyz` check).
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(pool)
        .await
        .is_ok()
}

pub(crate) fn parse_roles(raw: Vec<String>) -> Result<Vec<berth_domain::Role>, DbError> {
    raw.iter()
        .map(|r| r.parse().map_err(DbError::Corrupt))
        .collect()
}
