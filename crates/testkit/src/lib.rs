//! Test support shared by Berth's suites (a dev-dependency only; never linked into the product):
//! the AWS emulator and mail catcher probes, one bounded polling helper, the database's runtime
//! role, and the demo users read from the single file the local identity provider serves
//! (`tools/test-idp/users.json`).

pub mod db;
pub mod emulator;
pub mod maildev;
pub mod probe;
mod users;

pub use users::{demo_user, demo_users, DemoUser};

use std::future::Future;
use std::time::Duration;

/// Polls `probe` every `interval` until it returns `Some`, at most `tries` times; then panics
/// with `what`. Bounded by a count, not asserted on time, so a slow machine only waits longer.
pub async fn eventually<T, F, Fut>(what: &str, tries: u32, interval: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..tries {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(interval).await;
    }
    panic!("never happened after {tries} tries {interval:?} apart: {what}");
}

/// [`eventually`] for a condition: waits until `check` returns `true`.
pub async fn until<F, Fut>(what: &str, tries: u32, interval: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, tries, interval, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_some() {
        let calls = AtomicU32::new(0);
        let got = eventually("third call", 10, Duration::ZERO, || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never happened after 4 tries")]
    async fn gives_up_after_the_bound() {
        until("never", 4, Duration::ZERO, || async { false }).await;
    }
}
