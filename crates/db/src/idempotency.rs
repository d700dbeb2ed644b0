//! Remembered answers to API calls that carried an `Idempotency-Key`: per token and key, the
//! hash of what was asked and the first answer, for a day.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

/// How long a key is remembered.
pub const KEPT_HOURS: i32 = 24;

/// How long a claim may stay unanswered before a retry takes it over: the process that claimed
/// it ended (crash, restart) between doing the work and recording the answer. Every creating
/// call finishes in seconds, so a claim this old is abandoned, not slow.
pub const ABANDONED_MINUTES: i32 = 5;

/// What a claim on a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is new: the caller does the work, then [`complete`]s or [`release`]s it.
    New,
    /// The same request was answered before: send this again.
    Replay {
        status: u16,
        response: Value,
        location: Option<String>,
    },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still being answered (for up to
    /// [`ABANDONED_MINUTES`]).
    InProgress,
}

/// Claims `key` for `request_sha256` (method, path and body), or finds its earlier use.
pub async fn claim(
    pool: &PgPool,
    token_id: Uuid,
    key: &str,
    request_sha256: &[u8],
) -> Result<Claim, DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "DELETE FROM api_idempotency
         WHERE token_id = $1 AND key = $2
           AND (created_at < now() - make_interval(hours => $3)
                OR (status = 0 AND created_at < now() - make_interval(mins => $4)))",
        token_id,
        key,
        KEPT_HOURS,
        ABANDONED_MINUTES
    )
    .execute(&mut *tx)
    .await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO api_idempotency (token_id, key, request_sha256, status, response)
           VALUES ($1, $2, $3, 0, 'null') ON CONFLICT DO NOTHING RETURNING 1 AS "one!""#,
        token_id,
        key,
        request_sha256
    )
    .fetch_optional(&mut *tx)
    .await?;
    let claim = if inserted.is_some() {
        Claim::New
    } else {
        let row = sqlx::query!(
            "SELECT request_sha256, status, response, location FROM api_idempotency
             WHERE token_id = $1 AND key = $2",
            token_id,
            key
        )
        .fetch_one(&mut *tx)
        .await?;
        if row.request_sha256 != request_sha256 {
            Claim::Mismatch
        } else if row.status == 0 {
            Claim::InProgress
        } else {
            Claim::Replay {
                status: row.status as u16,
                response: row.response,
                location: row.location,
            }
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// Stores the answer to a claimed key.
pub async fn complete(
    pool: &PgPool,
    token_id: Uuid,
    key: &str,
    status: u16,
    response: &Value,
    location: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE api_idempotency SET status = $3, response = $4, location = $5
         WHERE token_id = $1 AND key = $2",
        token_id,
        key,
        status as i16,
        response,
        location
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a claimed key whose request changed nothing (it was refused), so it may be sent again.
pub async fn release(pool: &PgPool, token_id: Uuid, key: &str) -> Result<(), DbError> {
    sqlx::query!(
        "DELETE FROM api_idempotency WHERE token_id = $1 AND key = $2 AND status = 0",
        token_id,
        key
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets every key older than [`KEPT_HOURS`]; returns how many.
pub async fn purge(pool: &PgPool) -> Result<u64, DbError> {
    Ok(sqlx::query!(
        "DELETE FROM api_idempotency WHERE created_at < now() - make_interval(hours => $1)",
        KEPT_HOURS
    )
    .execute(pool)
    .await?
    .rows_affected())
}
