//! The sign-in audit trail (`auth_events`): who signed in or out, failed, or was refused.

use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEventKind {
    SignIn,
    SignOut,
    SignInFailed,
    AccessDenied,
    /// An environment's history or the auditors' list was exported.
    HistoryExport,
}

impl AuthEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthEventKind::SignIn => "sign_in",
            AuthEventKind::SignOut => "sign_out",
            AuthEventKind::SignInFailed => "sign_in_failed",
            AuthEventKind::AccessDenied => "access_denied",
            AuthEventKind::HistoryExport => "history_export",
        }
    }
}

/// One audit record; `reason` is a short, secret-free text (e.g. an error kind).
#[derive(Debug, Clone, Default)]
pub struct AuthEvent<'a> {
    pub user_id: Option<Uuid>,
    pub subject: Option<&'a str>,
    pub source_addr: Option<String>,
    pub reason: Option<&'a str>,
}

pub async fn record(pool: &PgPool, kind: AuthEventKind, e: AuthEvent<'_>) -> Result<(), DbError> {
    let reason = e.reason.map(|r| r.chars().take(500).collect::<String>());
    sqlx::query!(
        "INSERT INTO auth_events (kind, user_id, subject, source_addr, reason)
         VALUES ($1, $2, $3, $4, $5)",
        kind.as_str(),
        e.user_id,
        e.subject,
        e.source_addr,
        reason
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The most recent audit records of a kind (newest first), for tests and the auditors' view.
pub async fn recent(
    pool: &PgPool,
    kind: AuthEventKind,
    limit: i64,
) -> Result<Vec<(Option<Uuid>, Option<String>, Option<String>)>, DbError> {
    let rows = sqlx::query!(
        "SELECT user_id, source_addr, reason FROM auth_events WHERE kind = $1
         ORDER BY id DESC LIMIT $2",
        kind.as_str(),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.user_id, r.source_addr, r.reason))
        .collect())
}
