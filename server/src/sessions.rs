//! Sign-ins that follow the identity provider: a single sign-on sign-in is confirmed at the
//! provider when its roles are older than the re-check interval (one caller at a time), and
//! expired sessions and sign-ins are purged regularly.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use app::{api::guard::SignInCheck, error::AppError};
use berth_auth::{LazyOidcClient, ProviderTokens, RecheckError};
use berth_db::{
    sign_ins::{self, Current, StoredTokens},
    users::User,
    PgPool,
};
use time::OffsetDateTime;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

/// A claimed re-check lapses after this, so a caller that died mid-check does not block the
/// next one for long.
const CLAIM_FOR: Duration = Duration::from_secs(30);

/// The provider's tokens as the sign-in row keeps them (the storage crate knows no provider).
pub fn stored(t: ProviderTokens) -> StoredTokens {
    StoredTokens {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        access_expires_at: t.access_expires_at,
    }
}

/// Confirms single sign-on sign-ins at the provider.
pub struct ProviderCheck {
    pub pool: PgPool,
    pub oidc: Arc<LazyOidcClient>,
}

impl ProviderCheck {
    fn every(&self) -> Duration {
        self.oidc.settings().recheck_every
    }

    async fn confirm_now(&self, current: Current) -> Result<Option<User>, AppError> {
        let every = self.every();
        let age = OffsetDateTime::now_utc() - current.roles_checked_at;
        if age < every {
            return Ok(Some(current.user));
        }
        let Some(kept) = sign_ins::claim_recheck(&self.pool, current.id, every, CLAIM_FOR).await?
        else {
            // Another call is asking the provider right now; the roles it last confirmed
            // stand until it answers.
            return Ok(Some(current.user));
        };
        let tokens = ProviderTokens {
            access_token: kept.access_token,
            refresh_token: kept.refresh_token,
            access_expires_at: kept.access_expires_at,
        };
        let answer = match self.oidc.get().await {
            Ok(client) => client.recheck(&current.user.subject, &tokens).await,
            Err(e) if e.is_transient() => Err(RecheckError::Unavailable(e)),
            Err(e) => Err(RecheckError::Refused(e.to_string())),
        };
        match answer {
            Ok(rechecked) => {
                let kept = stored(rechecked.tokens);
                let changed =
                    sign_ins::confirm(&self.pool, current.id, &rechecked.roles, &kept).await?;
                if changed {
                    tracing::info!(user_id = %current.user.id, roles = ?rechecked.roles,
                        "the identity provider changed a person's roles during a session");
                }
                Ok(Some(User {
                    roles: rechecked.roles,
                    ..current.user
                }))
            }
            Err(RecheckError::Refused(why)) => {
                tracing::info!(user_id = %current.user.id, reason = %why,
                    "session ended: the identity provider no longer confirms the person");
                let audit = format!("the identity provider no longer confirms the person: {why}");
                sign_ins::end(
                    &self.pool,
                    current.id,
                    sign_ins::EndReason::RefusedByProvider,
                    Some(&audit),
                )
                .await?;
                Ok(None)
            }
            // A provider that is down for a while does not sign everyone out at once, but roles
            // are never trusted for more than twice the interval without it.
            Err(RecheckError::Unavailable(e)) if age < every * 2 => {
                tracing::warn!(error = %e, user_id = %current.user.id,
                    "cannot confirm a person's groups now; their roles stand a while longer");
                Ok(Some(current.user))
            }
            Err(RecheckError::Unavailable(e)) => {
                tracing::warn!(error = %e, user_id = %current.user.id,
                    "session ended: the identity provider could not confirm the person for too long");
                sign_ins::end(
                    &self.pool,
                    current.id,
                    sign_ins::EndReason::ProviderUnreachable,
                    Some("the identity provider could not confirm the person for too long"),
                )
                .await?;
                Ok(None)
            }
        }
    }
}

impl SignInCheck for ProviderCheck {
    fn confirm(
        &self,
        current: Current,
    ) -> Pin<Box<dyn Future<Output = Result<Option<User>, AppError>> + Send + '_>> {
        Box::pin(self.confirm_now(current))
    }
}

/// How often expired sessions and sign-ins are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Ended sign-ins are kept this long (the sign-in audit trail keeps their record for good).
pub const KEEP_ENDED: Duration = Duration::from_secs(7 * 24 * 3600);

/// One purge: expired session records, sign-ins past their lifetime, old ended sign-ins.
pub async fn purge_once(pool: &PgPool, store: &PostgresStore) -> anyhow::Result<()> {
    store.delete_expired().await?;
    let purged = sign_ins::purge(pool, KEEP_ENDED).await?;
    if purged != sign_ins::Purged::default() {
        tracing::info!(
            expired = purged.expired,
            deleted = purged.deleted,
            "purged sign-ins"
        );
    }
    Ok(())
}

/// Purges every `every` for as long as the server runs.
pub fn spawn_purge(pool: PgPool, store: PostgresStore, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = purge_once(&pool, &store).await {
                tracing::warn!(error = %e, "cannot purge expired sessions");
            }
        }
    });
}
