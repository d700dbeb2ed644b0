//! How long and how often the driver polls CloudFormation while a stack or change set is busy.

use std::time::Duration;

use berth_backoff::{Backoff, Delays};

/// How long and how often to poll: exponential backoff from `first_delay` (×2) up to
/// `max_delay`, giving up once the delays add up to `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            // Secrets and IAM users take minutes at most; a stuck stack should not block a
            // pipeline worker for longer.
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl WaitPolicy {
    /// The delays between polls, on Berth's one backoff schedule (doubling, no jitter: the
    /// driver is the only poller of its stack). [`Delays::waited`] is the figure reported when
    /// the budget runs out.
    pub fn delays(&self) -> Delays {
        Backoff::doubling(self.first_delay, self.max_delay).within(self.timeout)
    }
}
