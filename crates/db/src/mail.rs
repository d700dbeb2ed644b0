//! The email outbox: one row per message and recipient, written by [`crate::events::append`]
//! in the event's transaction and sent by the mail worker in `berth-notify`.

use berth_domain::MailKind;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use time::OffsetDateTime;

use crate::{
    outbox::{Appended, Context},
    DbError,
};

/// Writes the emails `kind` sends for `event`: to every admin who may decide the request (not
/// its requester) for an approval, else to the requester. People without an address, service
/// accounts and disabled accounts get none.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    event: &Appended<'_>,
    context: &Context,
    kind: MailKind,
) -> Result<(), DbError> {
    let data = json!({
        "environment_id": event.environment_id,
        "environment_name": context.environment_name,
        "environment_slug": context.environment_slug,
        "request_id": event.request_id,
        "request_kind": context.request_kind,
        "requester_name": context.requester_name,
        "note": event.details.get("note"),
        "run_id": event.details.get("run_id"),
        "rolled_back": event.details.get("rolled_back"),
        // The approved plan stopped applying: the request awaits a decision on a new one.
        "reapproval": event.kind == "run.needs_reapproval",
    });
    if kind.to_admins() {
        sqlx::query!(
            "INSERT INTO mail_outbox (event_id, kind, recipient, data)
             SELECT $1, $2, u.email, $3 FROM users u
             WHERE 'admin' = ANY (u.roles) AND u.kind = 'person' AND u.disabled_at IS NULL
               AND coalesce(u.email, '') <> '' AND u.id IS DISTINCT FROM $4
             ON CONFLICT (event_id, recipient) DO NOTHING",
            event.id,
            kind.as_str(),
            data,
            context.requested_by
        )
        .execute(conn)
        .await?;
    } else {
        sqlx::query!(
            "INSERT INTO mail_outbox (event_id, kind, recipient, data)
             SELECT $1, $2, u.email, $3 FROM users u
             WHERE u.id = $4 AND u.kind = 'person' AND u.disabled_at IS NULL
               AND coalesce(u.email, '') <> ''
             ON CONFLICT (event_id, recipient) DO NOTHING",
            event.id,
            kind.as_str(),
            data,
            context.requested_by
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// An email a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub attempts: i32,
    pub kind: MailKind,
    pub recipient: String,
    pub data: Value,
    /// The run's error, for a failure email.
    pub run_error: Option<String>,
    /// When the email was queued (with its event).
    pub created_at: OffsetDateTime,
}

/// Marks pending emails older than `max_age` as skipped (a worker started after email was off
/// does not mail a backlog); returns how many.
pub async fn skip_stale(pool: &PgPool, max_age: Duration) -> Result<u64, DbError> {
    let secs = max_age.as_secs_f64();
    Ok(sqlx::query!(
        "UPDATE mail_outbox SET status = 'skipped', last_error = 'older than the cut-off when the mail worker started'
         WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)",
        secs
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Claims up to `limit` due emails for `lease`; each claim counts as an attempt.
pub async fn claim(pool: &PgPool, limit: i64, lease: Duration) -> Result<Vec<Claimed>, DbError> {
    let lease_secs = lease.as_secs_f64();
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT id FROM mail_outbox
               WHERE status = 'pending' AND next_attempt_at <= now()
                 AND (lease_until IS NULL OR lease_until < now())
               ORDER BY next_attempt_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED
           )
           UPDATE mail_outbox o
           SET attempts = o.attempts + 1, lease_until = now() + make_interval(secs => $2)
           FROM due
           WHERE o.id = due.id
           RETURNING o.id, o.attempts, o.kind, o.recipient, o.data, o.created_at,
                     (SELECT r.error FROM runs r
                      WHERE r.id::text = o.data ->> 'run_id') AS run_error"#,
        limit,
        lease_secs
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Claimed {
                kind: r.kind.parse().map_err(DbError::Corrupt)?,
                id: r.id,
                attempts: r.attempts,
                recipient: r.recipient,
                data: r.data,
                run_error: r.run_error,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// Records a claimed email as sent.
pub async fn sent(pool: &PgPool, claimed: &Claimed) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE mail_outbox SET status = 'sent', sent_at = now(), lease_until = NULL, last_error = NULL
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
        claimed.id,
        claimed.attempts
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: tried again after `retry_after`, or failed for good with `None`.
pub async fn failed(
    pool: &PgPool,
    claimed: &Claimed,
    error: &str,
    retry_after: Option<Duration>,
) -> Result<(), DbError> {
    let error: String = error.chars().take(500).collect();
    sqlx::query!(
        "UPDATE mail_outbox
         SET status = CASE WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END,
             lease_until = NULL, last_error = $4,
             next_attempt_at = now() + make_interval(secs => coalesce($3::float8, 0))
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
        claimed.id,
        claimed.attempts,
        retry_after.map(|d| d.as_secs_f64()),
        error
    )
    .execute(pool)
    .await?;
    Ok(())
}
