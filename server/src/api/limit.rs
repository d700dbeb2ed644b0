//! Rate limits with `Retry-After`: per API token on `/api/v1`, per address on starting logins.
//! The buckets live in the database (`berth_db::rate_limits`, GCRA), so every web replica draws
//! from the same allowance.

use std::{fmt::Display, num::NonZeroU32, time::Duration};

use berth_db::{rate_limits::Rate, PgPool};
use uuid::Uuid;

/// One kind of limit: `kind` names its buckets (`api:<token>`, `login:<address>`).
#[derive(Clone)]
pub struct SharedLimit {
    pool: PgPool,
    kind: &'static str,
    rate: Rate,
}

impl SharedLimit {
    /// `per_minute` calls a minute on average, `burst` at once, per key.
    pub fn new(
        pool: PgPool,
        kind: &'static str,
        per_minute: NonZeroU32,
        burst: NonZeroU32,
    ) -> Self {
        Self {
            pool,
            kind,
            rate: Rate { per_minute, burst },
        }
    }

    /// `Ok` when `key` may go ahead now, else how long until it may. When the database cannot
    /// say, the call goes ahead (it is about to need the database anyway) and a warning is logged.
    pub async fn check(&self, key: impl Display) -> Result<(), Duration> {
        let bucket = format!("{}:{key}", self.kind);
        match berth_db::rate_limits::take(&self.pool, &bucket, self.rate).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(wait),
            Err(e) => {
                tracing::warn!(error = %e, kind = self.kind, "rate limit unavailable; call let through");
                Ok(())
            }
        }
    }
}

/// The limiter every API call of a token draws from.
#[derive(Clone)]
pub struct ApiLimiter(SharedLimit);

impl ApiLimiter {
    pub fn new(pool: PgPool, per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        ApiLimiter(SharedLimit::new(pool, "api", per_minute, burst))
    }

    /// `Ok` when `token` may call now, else how long until it may.
    pub async fn check(&self, token: Uuid) -> Result<(), Duration> {
        self.0.check(token).await
    }
}
