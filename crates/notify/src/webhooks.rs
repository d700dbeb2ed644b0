//! The webhook delivery worker: claims due deliveries from the outbox (`berth_db::webhooks`),
//! signs and POSTs each one, and records the attempt with what follows it (delivered, a retry
//! after a backoff, or — after the last attempt — the endpoint disabled).
//!
//! Where a delivery may go is checked on every attempt against the addresses the host resolves
//! to *now* (a name that pointed somewhere public at registration may point inside later), and
//! the connection is made to exactly the addresses checked. Redirects are not followed and no
//! proxy is used.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use berth_db::{
    webhooks::{self, Attempt, Claimed, Next},
    DbError, PgPool,
};
use berth_domain::notify::refused_target;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{settings::WebhookSettings, signing};

/// At most this many deliveries are sent at once.
const BATCH: i64 = 16;

pub struct WebhookWorker {
    pool: PgPool,
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl WebhookWorker {
    pub fn new(pool: PgPool, settings: WebhookSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .user_agent(concat!("Berth-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: settings.allow_private,
            }))
            .build()?;
        Ok(Self {
            pool,
            client,
            settings,
        })
    }

    /// Delivers until `stop` completes (attempts under way finish first).
    pub async fn run_until(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failing = 0u32;
        loop {
            let idle = match self.deliver_due().await {
                Ok(claimed) => {
                    failing = 0;
                    claimed == 0
                }
                Err(e) => {
                    failing += 1;
                    tracing::error!(error = %e, "webhook deliveries: cannot read the outbox");
                    true
                }
            };
            if idle {
                let wait = if failing > 0 {
                    berth_backoff::Backoff::doubling(self.settings.poll, Duration::from_secs(60))
                        .delay(failing)
                } else {
                    self.settings.poll
                };
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Claims the deliveries due now (one batch), sends them at once and records each attempt;
    /// returns how many it claimed.
    pub async fn deliver_due(&self) -> Result<usize, DbError> {
        // Longer than an attempt can take, so a live attempt never loses its claim.
        let lease = self.settings.timeout + Duration::from_secs(30);
        let claimed =
            webhooks::claim(&self.pool, self.settings.sealer.as_ref(), BATCH, lease).await?;
        let n = claimed.len();
        let results = futures_util::future::join_all(claimed.iter().map(|c| self.attempt(c))).await;
        for (c, (attempt, next)) in claimed.iter().zip(results) {
            if !webhooks::record_attempt(&self.pool, c, &attempt, &next).await? {
                tracing::warn!(delivery_id = %c.delivery_id, "webhook attempt outdated by a later claim; not recorded");
            }
        }
        Ok(n)
    }

    /// Sends one delivery and decides what follows.
    async fn attempt(&self, c: &Claimed) -> (Attempt, Next) {
        let started_at = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let (status_code, error) = match self.send(c).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (Some(status), Some(format!("HTTP {status}"))),
            Err(e) => (None, Some(e)),
        };
        let attempt = Attempt {
            started_at,
            duration: clock.elapsed(),
            status_code,
            error,
        };
        let next = match &attempt.error {
            None => Next::Delivered,
            Some(error) => {
                let failures = u32::try_from(c.failures).unwrap_or(0) + 1;
                tracing::info!(delivery_id = %c.delivery_id, endpoint_id = %c.endpoint_id,
                    attempt = c.attempt, failures, error, "webhook delivery failed");
                if failures >= self.settings.max_attempts {
                    Next::GiveUp {
                        reason: format!(
                            "Disabled by Berth on {}: event {} ({}) could not be delivered in \
                             {failures} attempts; the last one: {error}.",
                            started_at.date(),
                            c.message_id(),
                            c.event_type
                        ),
                    }
                } else {
                    Next::RetryAfter(self.settings.retry.delay(failures))
                }
            }
        };
        (attempt, next)
    }

    /// POSTs the signed message; the endpoint's status, or why there was none.
    async fn send(&self, c: &Claimed) -> Result<u16, String> {
        let url = reqwest::Url::parse(&c.url).map_err(|e| format!("invalid URL: {e}"))?;
        // An address in the URL itself is not resolved, so the resolver cannot check it.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            if let Some(why) = refused_target(&ip.to_string(), &[ip], self.settings.allow_private) {
                return Err(format!("refused: {why}"));
            }
        }
        let body = body(c, &self.settings.public_url);
        let id = c.message_id();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = signing::sign(c.secret.expose_secret(), &id, timestamp, &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// The message's body: `{"type", "timestamp", "data"}`, with links to Berth's pages added to the
/// stored data. The same for every attempt.
pub fn body(c: &Claimed, public_url: &str) -> Vec<u8> {
    let mut data = c.data.clone();
    if let Some(id) = data["environment"]["id"].as_str().map(str::to_owned) {
        data["environment"]["url"] = Value::String(format!("{public_url}/environments/{id}"));
    }
    if let Some(id) = data["request"]["id"].as_str().map(str::to_owned) {
        data["request"]["url"] = Value::String(format!("{public_url}/requests/{id}"));
    }
    let timestamp = c
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::to_vec(&json!({ "type": c.event_type, "timestamp": timestamp, "data": data }))
        .expect("JSON values serialize")
}

/// A failed request as the delivery log shows it: the error and its causes, without the URL
/// (it may carry a token in its path).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Resolves a host and refuses it when any of its addresses may not be reached; the connection
/// then goes to exactly the addresses returned (no second lookup to rebind).
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            if let Some(why) = refused_target(&host, &ips, allow_private) {
                return Err(Box::new(Refused(format!("refused: {why}"))) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A target refused by the address check.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
