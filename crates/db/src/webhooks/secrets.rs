//! Signing secrets at rest: sealed with the process's [`Sealer`] when one is configured
//! (`BERTH_SEALING_KEY`), else stored as they are. Start-up ([`seal_secrets`]) brings every row
//! to the configured state before anything is delivered.

use sqlx::PgPool;
use uuid::Uuid;

use crate::sealing::{SealError, Sealer};
use crate::DbError;

/// What [`seal_secrets`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretsAtRest {
    /// Secrets sealed (or sealed again with the current key) by this call.
    pub sealed_now: usize,
    /// Secrets stored as they are (only without a sealer).
    pub plain: usize,
}

/// The raw signing key of an endpoint's row: the plain column, or the sealed one opened.
pub(super) fn open_secret(
    sealer: Option<&Sealer>,
    endpoint_id: Uuid,
    plain: Option<Vec<u8>>,
    sealed: Option<Vec<u8>>,
) -> Result<Vec<u8>, DbError> {
    match (plain, sealed, sealer) {
        (Some(plain), None, _) => Ok(plain),
        (None, Some(sealed), Some(sealer)) => Ok(sealer.open(&sealed, endpoint_id.as_bytes())?),
        (None, Some(_), None) => Err(SealError::NoKey { sealed: 1 }.into()),
        _ => Err(DbError::Corrupt(format!(
            "webhook endpoint {endpoint_id} holds no single signing secret"
        ))),
    }
}

/// Brings every endpoint's secret to what `sealer` asks for, in one transaction: with a
/// sealer, plain secrets and those sealed with the previous key are sealed with the current
/// one, and every sealed secret is opened once (a damaged one, or one sealed with a key that is
/// not configured, stops start-up here rather than failing deliveries later). Without one,
/// sealed secrets stop start-up (they could not be signed with) and plain ones are counted.
pub async fn seal_secrets(
    pool: &PgPool,
    sealer: Option<&Sealer>,
) -> Result<SecretsAtRest, DbError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        "SELECT id, secret, secret_sealed FROM webhook_endpoints ORDER BY id FOR UPDATE"
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut report = SecretsAtRest {
        sealed_now: 0,
        plain: 0,
    };
    let Some(sealer) = sealer else {
        let sealed = rows.iter().filter(|r| r.secret_sealed.is_some()).count();
        if sealed > 0 {
            return Err(SealError::NoKey { sealed }.into());
        }
        report.plain = rows.len();
        return Ok(report);
    };
    for row in rows {
        let current = row
            .secret_sealed
            .as_deref()
            .is_some_and(|s| sealer.is_current(s));
        let key = open_secret(Some(sealer), row.id, row.secret, row.secret_sealed)?;
        if current {
            continue;
        }
        let sealed = sealer.seal(&key, row.id.as_bytes())?;
        sqlx::query!(
            "UPDATE webhook_endpoints SET secret = NULL, secret_sealed = $2 WHERE id = $1",
            row.id,
            sealed
        )
        .execute(&mut *tx)
        .await?;
        report.sealed_now += 1;
    }
    tx.commit().await?;
    Ok(report)
}
