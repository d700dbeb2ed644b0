//! The sign-in audit trail (`auth_events`): who signed in or out, failed, or was refused; who
//! exported history, made or revoked a token or a service account, changed a setting, ended a
//! person's sessions; sessions the identity provider ended and roles it changed.

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
    /// An API token was made (by its holder, or by an admin for a service account).
    TokenIssued,
    /// An API token was revoked.
    TokenRevoked,
    ServiceAccountCreated,
    ServiceAccountDisabled,
    ServiceAccountEnabled,
    /// A company setting changed (the reason says which, from what, to what).
    SettingChanged,
    /// An admin ended every session of a person (`user_id` is the person; the reason names
    /// the admin and how many sessions ended).
    SessionsEnded,
    /// One session ended without its holder signing out: the identity provider refused to
    /// confirm the person, or could not be reached for too long.
    SessionEnded,
    /// The identity provider reported other groups during a session, so the roles changed.
    RolesChanged,
}

impl AuthEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthEventKind::SignIn => "sign_in",
            AuthEventKind::SignOut => "sign_out",
            AuthEventKind::SignInFailed => "sign_in_failed",
            AuthEventKind::AccessDenied => "access_denied",
            AuthEventKind::HistoryExport => "history_export",
            AuthEventKind::TokenIssued => "token_issued",
            AuthEventKind::TokenRevoked => "token_revoked",
            AuthEventKind::ServiceAccountCreated => "service_account_created",
            AuthEventKind::ServiceAccountDisabled => "service_account_disabled",
            AuthEventKind::ServiceAccountEnabled => "service_account_enabled",
            AuthEventKind::SettingChanged => "setting_changed",
            AuthEventKind::SessionsEnded => "sessions_ended",
            AuthEventKind::SessionEnded => "session_ended",
            AuthEventKind::RolesChanged => "roles_changed",
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

/// Records one event, on a pool or inside the caller's transaction (so a change and its record
/// are written together).
pub async fn record<'c>(
    db: impl sqlx::PgExecutor<'c>,
    kind: AuthEventKind,
    e: AuthEvent<'_>,
) -> Result<(), DbError> {
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
    .execute(db)
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
