//! The mail worker: sends the emails `berth_db::mail` queued with their events, over SMTP
//! (`lettre`), retrying a failed send with backoff.

use std::{future::Future, time::Duration};

use berth_db::{mail::Claimed, DbError, PgPool};
use berth_domain::{MailKind, RequestKind};
use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::settings::MailSettings;

/// Emails queued longer ago than this when the worker starts are skipped, not sent.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
const BATCH: i64 = 16;

pub struct MailWorker {
    pool: PgPool,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    settings: MailSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("BERTH_SMTP_URL is not a usable SMTP URL: {0}")]
    Url(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl MailWorker {
    pub fn new(pool: PgPool, settings: MailSettings) -> Result<Self, MailError> {
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose_secret())
                // The error may repeat the URL's password: say only what kind it is.
                .map_err(|e| {
                    MailError::Url(if e.is_client() {
                        "bad URL".into()
                    } else {
                        "unsupported".into()
                    })
                })?
                .timeout(Some(Duration::from_secs(30)))
                .build();
        Ok(Self {
            pool,
            transport,
            settings,
        })
    }

    /// Sends until `stop` completes.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) {
        match berth_db::mail::skip_stale(&self.pool, STALE_AFTER).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(skipped = n, "emails older than a day were not sent"),
            Err(e) => tracing::error!(error = %e, "email: cannot read the outbox"),
        }
        tokio::pin!(stop);
        loop {
            let idle = match self.send_due().await {
                Ok(n) => n == 0,
                Err(e) => {
                    tracing::error!(error = %e, "email: cannot read the outbox");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        }
    }

    /// Sends the emails due now (one batch); returns how many it claimed.
    pub async fn send_due(&self) -> Result<usize, DbError> {
        let claimed = berth_db::mail::claim(&self.pool, BATCH, Duration::from_secs(120)).await?;
        for c in &claimed {
            match self.send(c).await {
                Ok(()) => berth_db::mail::sent(&self.pool, c).await?,
                Err(error) => {
                    let attempts = u32::try_from(c.attempts).unwrap_or(u32::MAX);
                    let retry = (attempts < self.settings.max_attempts)
                        .then(|| self.settings.retry.delay(attempts));
                    tracing::warn!(mail_id = c.id, attempts, error, "email not sent");
                    berth_db::mail::failed(&self.pool, c, &error, retry).await?;
                }
            }
        }
        Ok(claimed.len())
    }

    async fn send(&self, c: &Claimed) -> Result<(), String> {
        let to: Mailbox = c
            .recipient
            .parse()
            .map_err(|e| format!("bad recipient address: {e}"))?;
        let (subject, text) = render(c, &self.settings.public_url);
        let message = Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The subject and plain-text body of a queued email, with links to Berth's pages.
pub fn render(c: &Claimed, public_url: &str) -> (String, String) {
    let d = &c.data;
    let text = |key: &str| d[key].as_str().unwrap_or_default().to_owned();
    let name = text("environment_name");
    let slug = text("environment_slug");
    let unit = format!("{name} ({slug})");
    let request_kind: Option<RequestKind> = d["request_kind"].as_str().and_then(|k| k.parse().ok());
    let what = request_kind.map_or("request", RequestKind::label);
    let environment_link = format!("{public_url}/environments/{}", text("environment_id"));
    let request_link = format!("{public_url}/requests/{}", text("request_id"));
    let note = d["note"].as_str().filter(|n| !n.is_empty());
    let (subject, body) = match c.kind {
        MailKind::ApprovalNeeded if d["reapproval"] == Value::Bool(true) => (
            format!("Approval needed again: {what} for {name}"),
            format!(
                "The approved plan for the {what} for {unit} no longer matches what runs (something changed since it was approved), so nothing was built from it. A new plan is being made.\n\nReview it and approve or reject it:\n{request_link}\n"
            ),
        ),
        MailKind::ApprovalNeeded => (
            format!("Approval needed: {what} for {name}"),
            format!(
                "{} asked for a {what} for {unit}.\n\nReview its plan and approve or reject it:\n{request_link}\n",
                d["requester_name"].as_str().unwrap_or("Someone")
            ),
        ),
        MailKind::Approved => (
            format!("Approved: your {what} for {name}"),
            format!(
                "Your {what} for {unit} was approved{}.\n\nFollow its provisioning:\n{environment_link}\n",
                note.map(|n| format!(" with this note: {n}")).unwrap_or_default()
            ),
        ),
        MailKind::Rejected => (
            format!("Rejected: your {what} for {name}"),
            format!(
                "Your {what} for {unit} was rejected.\n\nReason: {}\n\n{request_link}\n",
                note.unwrap_or("none given")
            ),
        ),
        MailKind::Ready => match request_kind {
            Some(RequestKind::Change) => (
                format!("Change applied: {name}"),
                format!("Your change to {unit} is applied.\n\n{environment_link}\n"),
            ),
            Some(RequestKind::Decommission) => (
                format!("Decommissioned: {name}"),
                format!("{unit} is decommissioned: everything it had is removed and proven gone.\n\n{environment_link}\n"),
            ),
            _ => (
                format!("Ready: {name}"),
                format!("Your environment {unit} is ready.\n\n{environment_link}\n"),
            ),
        },
        MailKind::Failed => (
            format!("Failed: your {what} for {name}"),
            format!(
                "The run for your {what} for {unit} failed{}.\n\n{}An admin can retry it from the failed step:\n{environment_link}\n",
                if d["rolled_back"] == Value::Bool(true) {
                    "; what it changed was rolled back, and the environment runs as before"
                } else {
                    ""
                },
                c.run_error
                    .as_deref()
                    .map(|e| format!("Error: {e}\n\n"))
                    .unwrap_or_default()
            ),
        ),
    };
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claimed(kind: MailKind, data: Value, run_error: Option<&str>) -> Claimed {
        Claimed {
            id: 1,
            attempts: 1,
            kind,
            recipient: "maria@seaview.example".into(),
            data,
            run_error: run_error.map(str::to_owned),
            created_at: time::OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn each_email_says_what_happened_and_links_to_it() {
        let env = "6f1c0c3e-0000-4000-8000-000000000001";
        let req = "6f1c0c3e-0000-4000-8000-000000000002";
        let data = |extra: Value| {
            let mut d = json!({
                "environment_id": env, "environment_name": "Trucking", "environment_slug": "trucking",
                "request_id": req, "request_kind": "create", "requester_name": "Maria Manager",
            });
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            d
        };
        let base = "https://berth.example.com";
        let (s, b) = render(
            &claimed(MailKind::ApprovalNeeded, data(json!({})), None),
            base,
        );
        assert_eq!(s, "Approval needed: new environment for Trucking");
        assert!(b.contains("Maria Manager asked"), "{b}");
        assert!(b.contains(&format!("{base}/requests/{req}")), "{b}");
        let (s, b) = render(
            &claimed(
                MailKind::ApprovalNeeded,
                data(json!({ "reapproval": true })),
                None,
            ),
            base,
        );
        assert_eq!(s, "Approval needed again: new environment for Trucking");
        assert!(b.contains("no longer matches"), "{b}");
        assert!(b.contains(&format!("{base}/requests/{req}")), "{b}");

        let (s, b) = render(
            &claimed(
                MailKind::Rejected,
                data(json!({ "note": "Use the shared unit." })),
                None,
            ),
            base,
        );
        assert_eq!(s, "Rejected: your new environment for Trucking");
        assert!(b.contains("Reason: Use the shared unit."), "{b}");

        let (s, b) = render(&claimed(MailKind::Ready, data(json!({})), None), base);
        assert_eq!(s, "Ready: Trucking");
        assert!(b.contains(&format!("{base}/environments/{env}")), "{b}");
        let (s, _) = render(
            &claimed(
                MailKind::Ready,
                data(json!({ "request_kind": "decommission" })),
                None,
            ),
            base,
        );
        assert_eq!(s, "Decommissioned: Trucking");

        let (s, b) = render(
            &claimed(
                MailKind::Failed,
                data(json!({})),
                Some("dsm failed: timeout"),
            ),
            base,
        );
        assert_eq!(s, "Failed: your new environment for Trucking");
        assert!(b.contains("Error: dsm failed: timeout"), "{b}");
    }
}
