//! The append-only event log behind every environment's timeline.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbError;

/// Stable event kinds; the timeline and exports key on these strings.
pub mod kind {
    pub const REQUEST_SUBMITTED: &str = "request.submitted";
    pub const REQUEST_APPROVED: &str = "request.approved";
    pub const REQUEST_REJECTED: &str = "request.rejected";
    pub const REQUEST_WITHDRAWN: &str = "request.withdrawn";
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub environment_id: Uuid,
    pub request_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    /// The API token the actor used, when the event came from an API call.
    pub token_name: Option<String>,
    pub kind: String,
    pub details: Value,
    pub created_at: OffsetDateTime,
}

impl Event {
    /// Who acted, as the timeline and exports name them: "Dana Admin", or "ci-bot (token
    /// deploy)" when the call came with an API token.
    pub fn actor_label(&self) -> Option<String> {
        let name = self.actor_name.as_deref()?;
        Some(match &self.token_name {
            Some(token) => format!("{name} (token {token})"),
            None => name.to_owned(),
        })
    }
}

/// Appends one event inside the caller's transaction, with the webhook deliveries and emails it
/// causes (`crate::outbox`): they commit, or roll back, with it.
pub async fn append(
    conn: &mut PgConnection,
    environment_id: Uuid,
    request_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    kind: &str,
    details: Value,
) -> Result<i64, DbError> {
    let row = sqlx::query!(
        "INSERT INTO events (environment_id, request_id, actor_id, kind, details)
         VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at",
        environment_id,
        request_id,
        actor_id,
        kind,
        details
    )
    .fetch_one(&mut *conn)
    .await?;
    let event = crate::outbox::Appended {
        id: row.id,
        environment_id,
        request_id,
        actor_id,
        kind,
        details: &details,
        created_at: row.created_at,
    };
    crate::outbox::record(conn, &event).await?;
    Ok(row.id)
}

/// An environment's timeline, oldest first, with actor names.
pub async fn for_environment(pool: &PgPool, environment_id: Uuid) -> Result<Vec<Event>, DbError> {
    let rows = sqlx::query_as!(
        Event,
        r#"SELECT e.id, e.environment_id, e.request_id, e.actor_id,
                  u.display_name AS "actor_name?", t.name AS "token_name?", e.kind, e.details,
                  e.created_at
           FROM events e LEFT JOIN users u ON u.id = e.actor_id
                LEFT JOIN api_tokens t ON t.id = e.token_id
           WHERE e.environment_id = $1 ORDER BY e.id"#,
        environment_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
