//! Company-wide settings that admins change (`company_settings`): for now the longest an API
//! token may live. A company without a stored row has the defaults.

use berth_domain::token::DEFAULT_MAX_TOKEN_DAYS;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::{self, AuthEvent, AuthEventKind},
    DbError,
};

/// A company's settings, and who changed them last (none: never changed, the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanySettings {
    pub max_token_days: u32,
    pub updated_by: Option<String>,
    pub updated_at: Option<OffsetDateTime>,
}

pub async fn get(pool: &PgPool, company_id: Uuid) -> Result<CompanySettings, DbError> {
    let row = sqlx::query!(
        "SELECT s.max_token_days, u.display_name, s.updated_at
         FROM company_settings s JOIN users u ON u.id = s.updated_by
         WHERE s.company_id = $1",
        company_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => CompanySettings {
            max_token_days: days(r.max_token_days)?,
            updated_by: Some(r.display_name),
            updated_at: Some(r.updated_at),
        },
        None => CompanySettings {
            max_token_days: DEFAULT_MAX_TOKEN_DAYS,
            updated_by: None,
            updated_at: None,
        },
    })
}

/// The longest a new token of this company may live, in days.
pub async fn max_token_days(pool: &PgPool, company_id: Uuid) -> Result<u32, DbError> {
    let stored = sqlx::query_scalar!(
        "SELECT max_token_days FROM company_settings WHERE company_id = $1",
        company_id
    )
    .fetch_optional(pool)
    .await?;
    stored.map_or(Ok(DEFAULT_MAX_TOKEN_DAYS), days)
}

/// Sets the longest a new token may live (`days`, already checked by
/// `berth_domain::token::parse_max_token_days`), by the admin `by`, and records the change in
/// the audit trail in the same transaction. Tokens made earlier keep their expiry. Returns the
/// previous value.
pub async fn set_max_token_days(
    pool: &PgPool,
    company_id: Uuid,
    days_allowed: u32,
    by: Uuid,
    source_addr: Option<String>,
) -> Result<u32, DbError> {
    let mut tx = pool.begin().await?;
    let previous = sqlx::query_scalar!(
        "SELECT max_token_days FROM company_settings WHERE company_id = $1 FOR UPDATE",
        company_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .map_or(Ok(DEFAULT_MAX_TOKEN_DAYS), days)?;
    sqlx::query!(
        "INSERT INTO company_settings (company_id, max_token_days, updated_by)
         VALUES ($1, $2, $3)
         ON CONFLICT (company_id) DO UPDATE
           SET max_token_days = EXCLUDED.max_token_days, updated_by = EXCLUDED.updated_by,
               updated_at = now()",
        company_id,
        days_allowed as i32,
        by
    )
    .execute(&mut *tx)
    .await?;
    let reason = format!("max_token_days: {previous} -> {days_allowed}");
    audit::record(
        &mut *tx,
        AuthEventKind::SettingChanged,
        AuthEvent {
            user_id: Some(by),
            subject: None,
            source_addr,
            reason: Some(&reason),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(previous)
}

fn days(stored: i32) -> Result<u32, DbError> {
    u32::try_from(stored).map_err(|_| DbError::Corrupt(format!("max_token_days {stored}")))
}
