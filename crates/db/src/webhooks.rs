//! Webhook endpoints, their outbox of deliveries and each delivery's attempts. Endpoints are
//! registered by admins; deliveries are written by [`crate::events::append`] in the event's
//! transaction and sent by the worker in `berth-notify`, which claims them here with a lease
//! and records each attempt.

use base64::{engine::general_purpose::STANDARD, Engine};
use berth_domain::{EventType, WebhookUrl};
use secrecy::{SecretBox, SecretString};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sealing::Sealer;
use crate::DbError;

mod secrets;

use secrets::open_secret;
pub use secrets::{seal_secrets, SecretsAtRest};

/// Random bytes behind a signing secret (Standard Webhooks allows 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// How a secret is written: this prefix, then the key in base64.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint as pages show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    /// Deliveries still to be made (due or waiting for a retry).
    pub pending: i64,
}

/// What registering an endpoint needs, parsed from the form.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: WebhookUrl,
    pub description: String,
    pub event_types: Vec<EventType>,
}

/// A new endpoint and its secret, which the caller shows once.
#[derive(Debug)]
pub struct Created {
    pub endpoint: Endpoint,
    /// `whsec_<base64>`; `SecretString` keeps it out of `Debug` and logs.
    pub secret: SecretString,
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: i64,
    pub event_type: String,
    pub environment_id: Option<Uuid>,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// How long the last attempt took.
    pub last_duration_ms: Option<i32>,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

struct EndpointRow {
    id: Uuid,
    url: String,
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    disabled_at: Option<OffsetDateTime>,
    disabled_reason: Option<String>,
    created_by: String,
    created_at: OffsetDateTime,
    pending: i64,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = DbError;
    fn try_from(r: EndpointRow) -> Result<Self, DbError> {
        Ok(Endpoint {
            event_types: r
                .event_types
                .iter()
                .map(|t| t.parse().map_err(DbError::Corrupt))
                .collect::<Result<_, _>>()?,
            id: r.id,
            url: r.url,
            description: r.description,
            enabled: r.enabled,
            disabled_at: r.disabled_at,
            disabled_reason: r.disabled_reason,
            created_by: r.created_by,
            created_at: r.created_at,
            pending: r.pending,
        })
    }
}

/// Registers an endpoint with a fresh secret, sealed with `sealer` when there is one (else
/// stored as it is). The caller has checked the actor may administer and that the URL's host is
/// one deliveries may reach.
pub async fn create(
    pool: &PgPool,
    sealer: Option<&Sealer>,
    created_by: Uuid,
    new: &NewEndpoint,
) -> Result<Created, DbError> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key).map_err(|e| DbError::Corrupt(format!("no randomness: {e}")))?;
    let secret = SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)));
    let id = Uuid::new_v4();
    let (plain, sealed) = match sealer {
        Some(sealer) => (None, Some(sealer.seal(&key, id.as_bytes())?)),
        None => (Some(key.to_vec()), None),
    };
    let types: Vec<String> = new.event_types.iter().map(|t| t.as_str().into()).collect();
    sqlx::query!(
        "INSERT INTO webhook_endpoints
             (id, url, description, event_types, secret, secret_sealed, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        new.url.as_str(),
        new.description,
        &types,
        plain,
        sealed,
        created_by
    )
    .execute(pool)
    .await?;
    tracing::info!(endpoint_id = %id, %created_by, "webhook endpoint registered");
    Ok(Created {
        endpoint: get(pool, id).await?,
        secret,
    })
}

/// Every endpoint, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Endpoint>, DbError> {
    sqlx::query_as!(
        EndpointRow,
        r#"SELECT w.id, w.url, w.description, w.event_types, w.enabled, w.disabled_at,
                  w.disabled_reason, u.display_name AS created_by, w.created_at,
                  (SELECT count(*) FROM webhook_deliveries d
                   WHERE d.endpoint_id = w.id AND d.status = 'pending') AS "pending!"
           FROM webhook_endpoints w JOIN users u ON u.id = w.created_by
           ORDER BY w.created_at DESC, w.id"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Endpoint::try_from)
    .collect()
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Endpoint, DbError> {
    sqlx::query_as!(
        EndpointRow,
        r#"SELECT w.id, w.url, w.description, w.event_types, w.enabled, w.disabled_at,
                  w.disabled_reason, u.display_name AS created_by, w.created_at,
                  (SELECT count(*) FROM webhook_deliveries d
                   WHERE d.endpoint_id = w.id AND d.status = 'pending') AS "pending!"
           FROM webhook_endpoints w JOIN users u ON u.id = w.created_by
           WHERE w.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DbError::NotFound)?
    .try_into()
}

/// Turns an endpoint off (`reason` says who did) or on again. On again, its pending deliveries
/// are due at once with a fresh set of attempts.
pub async fn set_enabled(
    pool: &PgPool,
    id: Uuid,
    enabled: bool,
    reason: &str,
) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query!(
        "UPDATE webhook_endpoints
         SET enabled = $2,
             disabled_at = CASE WHEN $2 THEN NULL ELSE coalesce(disabled_at, now()) END,
             disabled_reason = CASE WHEN $2 THEN NULL ELSE coalesce(disabled_reason, $3) END
         WHERE id = $1",
        id,
        enabled,
        reason
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    if enabled {
        sqlx::query!(
            "UPDATE webhook_deliveries SET failures = 0, next_attempt_at = now()
             WHERE endpoint_id = $1 AND status = 'pending'",
            id
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(endpoint_id = %id, enabled, "webhook endpoint switched");
    Ok(())
}

/// Removes an endpoint with its deliveries and their log.
pub async fn delete(pool: &PgPool, id: Uuid) -> Result<(), DbError> {
    let n = sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    tracing::info!(endpoint_id = %id, "webhook endpoint removed");
    Ok(())
}

/// An endpoint's latest deliveries (at most `limit`), newest first, with their last attempt.
pub async fn deliveries(
    pool: &PgPool,
    endpoint_id: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    Ok(sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.event_id, m.event_type, e.environment_id AS "environment_id?",
                  d.status, d.attempts, d.last_status, d.last_error,
                  a.duration_ms AS "last_duration_ms?",
                  CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
                  d.created_at, d.finished_at
           FROM webhook_deliveries d
           JOIN webhook_messages m ON m.event_id = d.event_id
           LEFT JOIN events e ON e.id = d.event_id
           LEFT JOIN LATERAL (SELECT duration_ms FROM webhook_attempts
                              WHERE delivery_id = d.id ORDER BY attempt DESC LIMIT 1) a ON true
           WHERE d.endpoint_id = $1
           ORDER BY d.created_at DESC, d.event_id DESC
           LIMIT $2"#,
        endpoint_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Queues a delivery again, due now with a fresh set of attempts: the same message (same
/// `webhook-id`), so a receiver that already has it can tell.
pub async fn redeliver(pool: &PgPool, endpoint_id: Uuid, delivery_id: Uuid) -> Result<(), DbError> {
    let n = sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = 'pending', failures = 0, next_attempt_at = now(), finished_at = NULL
         WHERE id = $1 AND endpoint_id = $2",
        delivery_id,
        endpoint_id
    )
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(DbError::NotFound);
    }
    tracing::info!(%delivery_id, "webhook delivery queued again");
    Ok(())
}

/// Writes the message of an event and a delivery for every enabled endpoint that wants its
/// type, in the event's transaction; nothing when no endpoint wants it.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    event_id: i64,
    event_type: EventType,
    data: &Value,
    created_at: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query!(
        "WITH targets AS (
             SELECT id FROM webhook_endpoints WHERE enabled AND $2 = ANY (event_types)
         ), message AS (
             INSERT INTO webhook_messages (event_id, event_type, data, created_at)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM targets)
             RETURNING event_id
         )
         INSERT INTO webhook_deliveries (id, endpoint_id, event_id)
         SELECT gen_random_uuid(), t.id, m.event_id FROM targets t CROSS JOIN message m",
        event_id,
        event_type.as_str(),
        data,
        created_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery a worker claimed: what to send, where, and with which key.
pub struct Claimed {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: i64,
    /// This attempt's number (the fence for [`record_attempt`]).
    pub attempt: i32,
    /// Failed attempts before this one since the delivery was queued.
    pub failures: i32,
    pub url: String,
    pub secret: SecretBox<Vec<u8>>,
    pub event_type: String,
    pub data: Value,
    pub created_at: OffsetDateTime,
}

impl Claimed {
    /// The `webhook-id` of the message: one per event, the same for every attempt.
    pub fn message_id(&self) -> String {
        message_id(self.event_id)
    }
}

/// The `webhook-id` of event `event_id`'s message.
pub fn message_id(event_id: i64) -> String {
    format!("evt_{event_id}")
}

/// Claims up to `limit` due deliveries of enabled endpoints for `lease` (another worker takes
/// one over only after its lease ran out). Each claim counts as an attempt. Sealed secrets are
/// opened with `sealer` ([`seal_secrets`] has checked at start-up that it can).
pub async fn claim(
    pool: &PgPool,
    sealer: Option<&Sealer>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, DbError> {
    let lease_secs = lease.as_secs_f64();
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT d.id FROM webhook_deliveries d
               JOIN webhook_endpoints w ON w.id = d.endpoint_id
               WHERE d.status = 'pending' AND w.enabled AND d.next_attempt_at <= now()
                 AND (d.lease_until IS NULL OR d.lease_until < now())
               ORDER BY d.next_attempt_at
               LIMIT $1
               FOR UPDATE OF d SKIP LOCKED
           )
           UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1,
               lease_until = now() + make_interval(secs => $2)
           FROM due, webhook_endpoints w, webhook_messages m
           WHERE d.id = due.id AND w.id = d.endpoint_id AND m.event_id = d.event_id
           RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.failures, w.url, w.secret,
                     w.secret_sealed, m.event_type, m.data, m.created_at"#,
        limit,
        lease_secs
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let secret = open_secret(sealer, r.endpoint_id, r.secret, r.secret_sealed)?;
            Ok(Claimed {
                delivery_id: r.id,
                endpoint_id: r.endpoint_id,
                event_id: r.event_id,
                attempt: r.attempts,
                failures: r.failures,
                url: r.url,
                secret: SecretBox::new(Box::new(secret)),
                event_type: r.event_type,
                data: r.data,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub started_at: OffsetDateTime,
    pub duration: Duration,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed (no answer, a refused address, a non-2xx status), if it did.
    pub error: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone)]
pub enum Next {
    /// Delivered (a 2xx answer).
    Delivered,
    /// Failed; try again after this long.
    RetryAfter(Duration),
    /// Failed for the last time: the delivery fails and the endpoint is disabled with `reason`.
    GiveUp { reason: String },
}

/// Records an attempt and what follows it, if the delivery is still this claim's (no later
/// attempt was claimed meanwhile); returns whether it was.
pub async fn record_attempt(
    pool: &PgPool,
    claimed: &Claimed,
    attempt: &Attempt,
    next: &Next,
) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let retry_secs = match next {
        Next::RetryAfter(d) => Some(d.as_secs_f64()),
        _ => None,
    };
    let status = match next {
        Next::Delivered => "succeeded",
        Next::RetryAfter(_) => "pending",
        Next::GiveUp { .. } => "failed",
    };
    let error = attempt.error.as_deref().map(|e| truncate(e, 500));
    let updated = sqlx::query_scalar!(
        r#"UPDATE webhook_deliveries
           SET status = $3, lease_until = NULL, last_status = $4, last_error = $5,
               failures = CASE WHEN $3 = 'succeeded' THEN failures ELSE failures + 1 END,
               next_attempt_at = CASE WHEN $6::float8 IS NULL THEN next_attempt_at
                                      ELSE now() + make_interval(secs => $6::float8) END,
               finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
           WHERE id = $1 AND attempts = $2 AND status = 'pending'
           RETURNING CASE WHEN $3 = 'pending' THEN next_attempt_at END AS "next_attempt_at?""#,
        claimed.delivery_id,
        claimed.attempt,
        status,
        attempt.status_code.map(i32::from),
        error.as_deref(),
        retry_secs
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(next_attempt_at) = updated else {
        return Ok(false);
    };
    sqlx::query!(
        "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,
                                       status_code, error, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        claimed.delivery_id,
        claimed.attempt,
        attempt.started_at,
        i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX),
        attempt.status_code.map(i32::from),
        error.as_deref(),
        next_attempt_at
    )
    .execute(&mut *tx)
    .await?;
    if let Next::GiveUp { reason } = next {
        sqlx::query!(
            "UPDATE webhook_endpoints
             SET enabled = false, disabled_at = now(), disabled_reason = $2
             WHERE id = $1 AND enabled",
            claimed.endpoint_id,
            truncate(reason, 1000)
        )
        .execute(&mut *tx)
        .await?;
        tracing::warn!(endpoint_id = %claimed.endpoint_id, "webhook endpoint disabled after its last failed attempt");
    }
    tx.commit().await?;
    Ok(true)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
