//! Per-token rate limit of `/api/v1` (GCRA, `governor`): a token sending faster than its rate
//! after the burst gets 429 with `Retry-After`. In memory, so per server process.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

/// The limiter every API call of a token draws from.
#[derive(Clone)]
pub struct ApiLimiter(Arc<DefaultKeyedRateLimiter<Uuid>>);

impl ApiLimiter {
    /// `per_minute` calls a minute on average, `burst` at once.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        ApiLimiter(Arc::new(DefaultKeyedRateLimiter::keyed(quota)))
    }

    /// `Ok` when `token` may call now, else how long until it may.
    pub fn check(&self, token: Uuid) -> Result<(), Duration> {
        self.0.check_key(&token).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }

    /// Forgets tokens whose buckets are full again (called now and then, so memory stays bound
    /// by the tokens active lately).
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}
