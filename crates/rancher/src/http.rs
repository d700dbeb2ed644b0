//! The HTTP core: Bearer auth, per-request timeout, retries with backoff and jitter.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use berth_backoff::Backoff;

use crate::error::{parse_error_body, RancherError};

/// A Rancher API key (`token-xxxxx:secret` or any other shape; treated as opaque). Never shown by
/// `Debug` or `Display`.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the HTTP layer retries transient failures: 429 (honouring `Retry-After`), 5xx and
/// timeouts; 4xx answers never. The delays come from the project's one [`Backoff`] schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRetries {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// Delay before each retry. Keep some jitter so callers rejected together spread out.
    pub backoff: Backoff,
}

impl HttpRetries {
    /// Jitter of the default schedule: ±50 %, so a retry waits at least half its delay (never
    /// collapsing to zero) and callers rejected together do not come back in lockstep.
    pub const JITTER: f64 = 0.5;

    /// `max_attempts` in total, waiting `initial` doubling up to `max` between them, ±50 %.
    pub fn doubling(max_attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::doubling(initial, max).with_jitter(Self::JITTER),
        }
    }

    /// The delay after `failed_attempt` (1-based) failed.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        self.backoff.delay(failed_attempt)
    }
}

impl Default for HttpRetries {
    /// 5 attempts, 500 ms doubling up to 30 s.
    fn default() -> Self {
        Self::doubling(5, Duration::from_millis(500), Duration::from_secs(30))
    }
}

/// Whether a request may be sent again after an uncertain outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads and "ensure" writes: retry on 429, 5xx, timeouts.
    Safe,
    /// Helm actions: a timeout or a processed 500 may mean the action started, so only answers
    /// that prove nothing happened (429, 502/503/504, the proxy's plain-text 5xx, connection
    /// failures) are retried; the caller re-reads the state for the rest.
    Unsafe,
}

pub(crate) struct Answer {
    /// Response body kept as bytes (JSON or plain text).
    pub body: Vec<u8>,
}

/// Answers can hold secret values (a Secret read back): their bytes are zeroed on drop.
impl Drop for Answer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

impl Answer {
    pub fn json(&self, path: &str) -> Result<Value, RancherError> {
        serde_json::from_slice(&self.body).map_err(|e| RancherError::Decode {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub token: ApiToken,
    pub request_timeout: Duration,
    pub retry: HttpRetries,
}

impl Http {
    /// Sends `method path_and_query` (relative to the base URL) and returns a 2xx answer, or the
    /// typed error of the last attempt.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<Answer, RancherError> {
        let bytes = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| RancherError::Decode {
                path: path.split('?').next().unwrap_or(path).to_owned(),
                message: format!("cannot encode the request body: {e}"),
            })?),
            None => None,
        };
        self.send_bytes(method, path, bytes.as_deref(), idempotency)
            .await
    }

    /// [`send`](Self::send) with a JSON body already serialised (e.g. into a buffer the caller
    /// zeroes afterwards, for bodies holding secret values). Neither the body nor an answer's
    /// body is ever logged.
    #[tracing::instrument(level = "debug", skip_all, fields(%method, path = %path))]
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        idempotency: Idempotency,
    ) -> Result<Answer, RancherError> {
        let url = format!("{}{}", self.base, path);
        let clean_path = path.split('?').next().unwrap_or(path).to_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(self.token.expose_secret())
                .header(ACCEPT, "application/json")
                .timeout(self.request_timeout);
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let last = attempt >= self.retry.max_attempts;
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes.to_vec())),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let (status, headers, bytes) = match outcome {
                Ok(v) => v,
                Err(e) if e.is_timeout() => {
                    let err = RancherError::Timeout {
                        path: clean_path.clone(),
                        attempts: attempt,
                    };
                    if idempotency == Idempotency::Unsafe || last {
                        return Err(err);
                    }
                    self.pause(attempt, None, &err).await;
                    continue;
                }
                Err(e) => {
                    // Connection failures happen before the request is processed.
                    // A Helm action that failed later may have reached the API: the caller
                    // re-reads the state instead.
                    let retryable =
                        e.is_connect() || (idempotency == Idempotency::Safe && e.is_request());
                    let err = RancherError::Transport {
                        path: clean_path.clone(),
                        source: e.without_url(),
                    };
                    if !retryable || last {
                        return Err(err);
                    }
                    self.pause(attempt, None, &err).await;
                    continue;
                }
            };
            if status.is_success() {
                return Ok(Answer { body: bytes });
            }
            let err = if status == StatusCode::TOO_MANY_REQUESTS {
                RancherError::RateLimited {
                    path: clean_path.clone(),
                    attempts: attempt,
                }
            } else {
                parse_error_body(&clean_path, status.as_u16(), &bytes)
            };
            let retry = match status.as_u16() {
                429 => true,
                502..=504 => true,
                500..=599 => match idempotency {
                    Idempotency::Safe => true,
                    // Only the proxy's plain-text 500 proves the request never reached the API.
                    Idempotency::Unsafe => matches!(err, RancherError::ClusterUnreachable { .. }),
                },
                _ => false,
            };
            if !retry || last {
                return Err(err);
            }
            self.pause(attempt, retry_after(&headers), &err).await;
        }
    }

    async fn pause(&self, attempt: u32, retry_after: Option<Duration>, err: &RancherError) {
        let mut delay = self.retry.delay(attempt);
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(self.retry.backoff.max));
        }
        tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying Rancher request");
        tokio::time::sleep(delay).await;
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_printed() {
        let t = ApiToken::new("token-abc:supersecret");
        assert!(!format!("{t:?} {t}").contains("supersecret"));
    }

    /// The old hand-rolled "equal jitter" kept each delay within [base/2, base]; the shared
    /// `Backoff` at ±50 % keeps it within [base/2, 3·base/2]: still never below half, still
    /// growing and capped (before jitter).
    #[test]
    fn backoff_grows_and_is_capped() {
        let p = HttpRetries::doubling(10, Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..50 {
            let b1 = p.delay(1);
            assert!(
                b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(150),
                "{b1:?}"
            );
            let b3 = p.delay(3);
            assert!(
                b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(600),
                "{b3:?}"
            );
            let b9 = p.delay(9);
            assert!(
                b9 >= Duration::from_millis(500) && b9 <= Duration::from_millis(1500),
                "{b9:?}"
            );
        }
    }

    #[test]
    fn defaults() {
        let d = HttpRetries::default();
        assert_eq!(d.max_attempts, 5);
        assert_eq!(d.backoff.initial, Duration::from_millis(500));
        assert_eq!(d.backoff.max, Duration::from_secs(30));
        assert_eq!(d.backoff.factor, 2);
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
