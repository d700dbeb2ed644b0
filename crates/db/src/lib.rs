//! Berth's PostgreSQL storage. Functions take a pool or a transaction so the caller owns the
//! transaction; every change writes its event in the same transaction as the change.

pub mod audit;
pub mod companies;
pub mod events;
pub mod history;
pub mod idempotency;
pub mod lists;
pub mod mail;
mod outbox;
pub mod requests;
pub mod settings;
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
