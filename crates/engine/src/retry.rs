//! The retry policy: exponential backoff with jitter and a per-step maximum of attempts.

use std::time::Duration;

/// How transient step failures are retried. Permanent failures are never retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Growth per further failed attempt.
    pub factor: u32,
    /// Upper bound of the delay before jitter.
    pub max_delay: Duration,
    /// Fraction of the delay randomised either way (0.0 = none, 0.2 = ±20 %), so workers that
    /// failed together do not retry in lockstep.
    pub jitter: f64,
    /// Attempts of an AWS or namespace step (first try included) before it fails for good.
    pub max_attempts: u32,
    /// Attempts of a chart step: each may wait for Helm for minutes, so fewer.
    pub chart_max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, ×2, capped at 60 s, ±20 %; 5 attempts (3 for charts).
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            factor: 2,
            max_delay: Duration::from_secs(60),
            jitter: 0.2,
            max_attempts: 5,
            chart_max_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `failed_attempt` (1-based) failed, before jitter.
    pub fn base_delay(&self, failed_attempt: u32) -> Duration {
        let exp = failed_attempt.saturating_sub(1).min(31);
        let growth = u64::from(self.factor.max(1)).saturating_pow(exp);
        let nanos = self.initial.as_nanos().saturating_mul(u128::from(growth));
        let capped = nanos.min(self.max_delay.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// The delay with jitter applied, never above `max_delay × (1 + jitter)`.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let base = self.base_delay(failed_attempt);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = rand::random_range((1.0 - jitter)..=(1.0 + jitter));
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=9).map(|a| p.base_delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.base_delay(1000), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let p = RetryPolicy::default();
        let samples: Vec<Duration> = (0..200).map(|_| p.delay(3)).collect();
        for d in &samples {
            assert!(*d >= Duration::from_millis(3200) && *d <= Duration::from_millis(4800));
        }
        assert!(samples.iter().any(|d| *d != samples[0]), "jitter varies");
    }

    #[test]
    fn zero_initial_means_immediate() {
        let p = RetryPolicy {
            initial: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(4), Duration::ZERO);
    }
}
