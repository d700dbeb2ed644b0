//! Berth's outbound notifications, sent from the outbox `berth-db` writes in each event's
//! transaction: signed webhooks ([Standard Webhooks](https://www.standardwebhooks.com/)) to the
//! endpoints admins registered, and emails over SMTP when it is configured. The server starts
//! both next to the provisioning worker; several servers share the outbox (claims with leases).

pub mod mail;
pub mod settings;
pub mod signing;
pub mod webhooks;

use std::future::Future;

use berth_db::PgPool;
pub use mail::MailWorker;
pub use settings::{MailSettings, WebhookSettings};
pub use webhooks::WebhookWorker;

/// The notification settings read with the server's.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub webhooks: WebhookSettings,
    /// `None`: email is off (no `BERTH_SMTP_URL`).
    pub mail: Option<MailSettings>,
}

impl NotifySettings {
    pub fn read<F: Fn(&str) -> Option<String>>(
        env: &mut berth_settings::Env<F>,
        public_url: &str,
    ) -> Self {
        Self {
            webhooks: WebhookSettings::read(env, public_url),
            mail: MailSettings::read(env, public_url),
        }
    }
}

/// The webhook worker and, with SMTP configured, the mail worker.
pub struct Notifiers {
    pub webhooks: WebhookWorker,
    pub mail: Option<MailWorker>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up webhook deliveries: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
}

impl Notifiers {
    /// Builds the workers; says once in the log whether email is on.
    pub fn new(pool: PgPool, settings: &NotifySettings) -> Result<Self, SetupError> {
        let webhooks = WebhookWorker::new(pool.clone(), settings.webhooks.clone())?;
        let mail = match &settings.mail {
            Some(m) => {
                tracing::info!(smtp = %m.server(), from = %m.from, "email notifications on");
                Some(MailWorker::new(pool, m.clone())?)
            }
            None => {
                tracing::info!("email notifications off: BERTH_SMTP_URL is not set");
                None
            }
        };
        Ok(Self { webhooks, mail })
    }

    /// Runs both workers until the futures `stop` makes (one per worker) complete.
    pub async fn run_until<F: Future<Output = ()>>(self, stop: impl Fn() -> F) {
        let hooks = self.webhooks.run_until(stop());
        match &self.mail {
            Some(mail) => {
                tokio::join!(hooks, mail.run_until(stop()));
            }
            None => hooks.await,
        }
    }
}
