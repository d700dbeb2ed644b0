//! What an appended event causes outside Berth: webhook deliveries and emails, written in the
//! event's own transaction (a durable outbox), so they exist exactly when the event committed.
//! Which events cause what is decided in `berth_domain::notify`; the workers in `berth-notify`
//! send them.

use berth_domain::{EventType, MailKind, RequestKind};
use serde_json::{json, Value};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::DbError;

/// The event just inserted.
pub(crate) struct Appended<'a> {
    pub id: i64,
    pub environment_id: Uuid,
    pub request_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub kind: &'a str,
    pub details: &'a Value,
    pub created_at: OffsetDateTime,
}

/// The environment and request an event is about, as notifications describe them.
pub(crate) struct Context {
    pub environment_name: String,
    pub environment_slug: String,
    pub request_kind: Option<RequestKind>,
    pub requested_by: Option<Uuid>,
    pub requester_name: Option<String>,
}

/// Writes the event's webhook message and deliveries, and its emails. Events that cause
/// neither (most: steps, plans) cost no query.
pub(crate) async fn record(conn: &mut PgConnection, event: &Appended<'_>) -> Result<(), DbError> {
    let mail = MailKind::from_timeline(event.kind);
    let may_hook = EventType::needs_request_kind(event.kind)
        || EventType::from_timeline(event.kind, None).is_some();
    if mail.is_none() && !may_hook {
        return Ok(());
    }
    let context = sqlx::query_as!(
        Context,
        r#"SELECT e.name AS environment_name, e.slug AS environment_slug,
                  r.kind AS "request_kind?: RequestKind", r.requested_by AS "requested_by?",
                  u.display_name AS "requester_name?"
           FROM environments e
           LEFT JOIN requests r ON r.id = $2
           LEFT JOIN users u ON u.id = r.requested_by
           WHERE e.id = $1"#,
        event.environment_id,
        event.request_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if let Some(event_type) = EventType::from_timeline(event.kind, context.request_kind) {
        let data = webhook_data(&mut *conn, event, &context, event_type).await?;
        crate::webhooks::enqueue(&mut *conn, event.id, event_type, &data, event.created_at).await?;
    }
    if let Some(kind) = mail {
        crate::mail::enqueue(&mut *conn, event, &context, kind).await?;
    }
    Ok(())
}

/// The `data` of a webhook message: the environment and request, who acted, and what the
/// event type adds (the decision and its note; the run, and for a failure its error).
async fn webhook_data(
    conn: &mut PgConnection,
    event: &Appended<'_>,
    context: &Context,
    event_type: EventType,
) -> Result<Value, DbError> {
    let run_id = event
        .details
        .get("run_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok());
    let mut data = json!({
        "event_id": event.id,
        "environment": {
            "id": event.environment_id,
            "name": context.environment_name,
            "slug": context.environment_slug,
        },
        "request": event.request_id.map(|id| json!({ "id": id, "kind": context.request_kind })),
        "actor_id": event.actor_id,
    });
    let extra = match event_type {
        EventType::RequestDecided => json!({
            "decision": if event.kind == "request.approved" { "approved" } else { "rejected" },
            "note": event.details.get("note"),
        }),
        EventType::RunFailed => {
            let run = match run_id {
                Some(id) => sqlx::query!("SELECT status, error FROM runs WHERE id = $1", id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| (r.status, r.error)),
                None => None,
            };
            json!({
                "run_id": run_id,
                "run_status": run.as_ref().map(|r| r.0.clone()),
                "error": run.and_then(|r| r.1),
                "rolled_back": event.details.get("rolled_back").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        EventType::RequestSubmitted => json!({
            "reapproval": event.kind == "run.needs_reapproval",
            "run_id": run_id,
        }),
        _ => json!({ "run_id": run_id }),
    };
    if let (Value::Object(d), Value::Object(x)) = (&mut data, extra) {
        d.extend(x);
    }
    Ok(data)
}
