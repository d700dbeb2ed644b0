//! How transient step failures are retried: the shared backoff schedule and a per-step maximum
//! of attempts.

use std::time::Duration;

use berth_backoff::Backoff;

/// Step retries. Permanent failures are never retried.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRetries {
    /// The delay before the next attempt after a transient failure.
    pub backoff: Backoff,
    /// Attempts of an AWS or namespace step (first try included) before it fails for good.
    pub max_attempts: u32,
    /// Attempts of a chart step: each may wait for Helm for minutes, so fewer.
    pub chart_max_attempts: u32,
}

impl Default for StepRetries {
    /// 1 s, ×2, capped at 60 s, ±20 %; 5 attempts (3 for charts).
    fn default() -> Self {
        Self {
            backoff: Backoff::doubling(Duration::from_secs(1), Duration::from_secs(60))
                .with_jitter(0.2),
            max_attempts: 5,
            chart_max_attempts: 3,
        }
    }
}

impl StepRetries {
    /// The delay (jitter applied) before the next attempt after `failed_attempt` (1-based).
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        self.backoff.delay(failed_attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let p = StepRetries::default();
        let secs: Vec<u64> = (1..=9).map(|a| p.backoff.base_delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.backoff.base_delay(1000), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let p = StepRetries::default();
        let samples: Vec<Duration> = (0..200).map(|_| p.delay(3)).collect();
        for d in &samples {
            assert!(*d >= Duration::from_millis(3200) && *d <= Duration::from_millis(4800));
        }
        assert!(samples.iter().any(|d| *d != samples[0]), "jitter varies");
    }

    #[test]
    fn zero_initial_means_immediate() {
        let p = StepRetries {
            backoff: Backoff {
                initial: Duration::ZERO,
                ..StepRetries::default().backoff
            },
            ..StepRetries::default()
        };
        assert_eq!(p.delay(4), Duration::ZERO);
    }

    #[test]
    fn attempts_by_default() {
        let p = StepRetries::default();
        assert_eq!((p.max_attempts, p.chart_max_attempts), (5, 3));
    }
}
