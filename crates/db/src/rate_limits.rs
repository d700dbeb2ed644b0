//! Rate limits shared by every server process: one GCRA bucket per key (an API token, an
//! address starting logins) in the unlogged `rate_limits` table, so several web replicas allow
//! together what the settings say, not that much each. A bucket is one row holding its
//! theoretical arrival time (`tat`); taking a call is one statement, atomic under concurrency.

use std::num::NonZeroU32;
use std::time::Duration;

use sqlx::PgPool;

use crate::DbError;

/// A rate: `per_minute` calls on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    /// Seconds between calls at the average rate.
    fn interval(self) -> f64 {
        60.0 / f64::from(self.per_minute.get())
    }

    /// How far ahead of now a bucket's arrival time may be and still take a call.
    fn tolerance(self) -> f64 {
        self.interval() * f64::from(self.burst.get() - 1)
    }
}

/// Takes one call from `bucket`'s allowance: `None` when the call may go ahead, else how long
/// until one may.
pub async fn take(pool: &PgPool, bucket: &str, rate: Rate) -> Result<Option<Duration>, DbError> {
    let row = sqlx::query!(
        r#"WITH taken AS (
               INSERT INTO rate_limits AS r (bucket, tat)
               VALUES ($1, now() + make_interval(secs => $2))
               ON CONFLICT (bucket) DO UPDATE
                   SET tat = greatest(r.tat, now()) + make_interval(secs => $2)
                   WHERE greatest(r.tat, now()) <= now() + make_interval(secs => $3)
               RETURNING 1
           )
           SELECT EXISTS (SELECT 1 FROM taken) AS "allowed!",
                  (SELECT extract(epoch FROM l.tat - now())::float8 - $3
                   FROM rate_limits l WHERE l.bucket = $1) AS wait"#,
        bucket,
        rate.interval(),
        rate.tolerance()
    )
    .fetch_one(pool)
    .await?;
    Ok((!row.allowed).then(|| Duration::from_secs_f64(row.wait.unwrap_or(0.0).max(0.0))))
}

/// Forgets the buckets that are full again (nothing left to remember); returns how many.
pub async fn forget_full(pool: &PgPool) -> Result<u64, DbError> {
    Ok(sqlx::query!("DELETE FROM rate_limits WHERE tat < now()")
        .execute(pool)
        .await?
        .rows_affected())
}
