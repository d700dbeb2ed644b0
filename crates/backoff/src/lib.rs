//! Exponential backoff with jitter: the one delay schedule Berth uses wherever it waits before
//! trying again (polling CloudFormation, retrying a Rancher call, retrying an engine step), so
//! every retry loop grows, caps and spreads its delays the same way.

use std::time::Duration;

/// A delay schedule: `initial × factor^(n-1)`, capped at `max`, then spread by `jitter`.
///
/// Jitter is a fraction of the delay randomised either way (0.0 = none, 0.2 = ±20 %), so
/// callers that failed together do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Growth per further failed attempt (1 = constant).
    pub factor: u32,
    /// Upper bound of the delay before jitter.
    pub max: Duration,
    /// Fraction randomised either way, clamped to 0.0..=1.0.
    pub jitter: f64,
}

impl Backoff {
    /// Doubling from `initial` up to `max`, without jitter.
    pub const fn doubling(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            factor: 2,
            max,
            jitter: 0.0,
        }
    }

    /// The same schedule with `jitter` (a fraction, e.g. 0.2 for ±20 %).
    pub const fn with_jitter(self, jitter: f64) -> Self {
        Self { jitter, ..self }
    }

    /// The delay after `failed_attempt` (1-based) failed, before jitter.
    pub fn base_delay(&self, failed_attempt: u32) -> Duration {
        let exp = failed_attempt.saturating_sub(1).min(63);
        let growth = u128::from(self.factor.max(1)).saturating_pow(exp);
        let nanos = self.initial.as_nanos().saturating_mul(growth);
        let capped = nanos.min(self.max.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// The delay with jitter applied; never above `max × (1 + jitter)`.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let base = self.base_delay(failed_attempt);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        base.mul_f64(rand::random_range((1.0 - jitter)..=(1.0 + jitter)))
    }

    /// An iterator over the successive delays (with jitter) for a polling loop that gives up
    /// once the delays add up to `budget`.
    pub fn within(self, budget: Duration) -> Delays {
        Delays {
            backoff: self,
            attempt: 0,
            waited: Duration::ZERO,
            budget,
        }
    }
}

/// Successive delays of a [`Backoff`] until a time budget is spent (see [`Backoff::within`]).
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    attempt: u32,
    waited: Duration,
    budget: Duration,
}

impl Delays {
    /// The total of the delays handed out so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.waited >= self.budget {
            return None;
        }
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.backoff.delay(self.attempt);
        self.waited = self.waited.saturating_add(delay);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(backoff: &Backoff, attempts: std::ops::RangeInclusive<u32>) -> Vec<u64> {
        attempts.map(|a| backoff.base_delay(a).as_secs()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(secs(&b, 1..=9), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.base_delay(1000), Duration::from_secs(60));
        assert_eq!(
            b.base_delay(0),
            Duration::from_secs(1),
            "attempt 0 reads as the first"
        );
    }

    #[test]
    fn factor_one_is_constant() {
        let b = Backoff {
            factor: 1,
            ..Backoff::doubling(Duration::from_secs(3), Duration::from_secs(60))
        };
        assert_eq!(secs(&b, 1..=4), [3, 3, 3, 3]);
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let b = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(60)).with_jitter(0.2);
        let samples: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        for d in &samples {
            assert!(
                *d >= Duration::from_millis(3200) && *d <= Duration::from_millis(4800),
                "{d:?}"
            );
        }
        assert!(samples.iter().any(|d| *d != samples[0]), "jitter varies");
    }

    #[test]
    fn zero_initial_means_immediate() {
        let b = Backoff::doubling(Duration::ZERO, Duration::from_secs(60)).with_jitter(0.5);
        assert_eq!(b.delay(4), Duration::ZERO);
    }

    #[test]
    fn delays_stop_once_the_budget_is_spent() {
        let b = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(4));
        let mut delays = b.within(Duration::from_secs(10));
        let got: Vec<u64> = delays.by_ref().map(|d| d.as_secs()).collect();
        assert_eq!(
            got,
            [1, 2, 4, 4],
            "1+2+4 = 7 < 10, so one more; 11 ≥ 10 stops"
        );
        assert_eq!(delays.waited(), Duration::from_secs(11));
    }
}
