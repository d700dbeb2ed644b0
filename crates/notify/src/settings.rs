//! The notification workers' settings, read with the server's (every problem listed at once).

use std::time::Duration;

use berth_backoff::Backoff;
use berth_db::sealing::{Sealer, SealingKey};
use berth_settings::{Env, ExposeSecret, SecretString};
use lettre::message::Mailbox;

/// Webhook deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliveries may go to loopback and private addresses (`BERTH_WEBHOOKS_ALLOW_PRIVATE`,
    /// local development only).
    pub allow_private: bool,
    /// How long one attempt may take, connection included (`BERTH_WEBHOOKS_TIMEOUT_MS`).
    pub timeout: Duration,
    /// The delay after each failed attempt.
    pub retry: Backoff,
    /// Attempts before a delivery fails and its endpoint is disabled.
    pub max_attempts: u32,
    /// How often the worker looks for due deliveries when idle.
    pub poll: Duration,
    /// Berth's public origin, for the links in payloads.
    pub public_url: String,
    /// Seals signing secrets at rest (`BERTH_SEALING_KEY`, and `BERTH_SEALING_KEY_PREVIOUS`
    /// while rotating); `None` stores them as they are.
    pub sealer: Option<Sealer>,
}

impl WebhookSettings {
    /// Ten attempts over about a day: after 1, 3, 9, 27 and 81 minutes, about 4 hours, then
    /// every 6 hours (±20 %), 24 hours in all.
    pub const RETRY: Backoff = Backoff {
        initial: Duration::from_secs(60),
        factor: 3,
        max: Duration::from_secs(6 * 3600),
        jitter: 0.2,
    };
    pub const MAX_ATTEMPTS: u32 = 10;

    pub fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, public_url: &str) -> Self {
        Self {
            allow_private: env.flag("BERTH_WEBHOOKS_ALLOW_PRIVATE", false),
            timeout: env.millis("BERTH_WEBHOOKS_TIMEOUT_MS", 10_000),
            retry: Self::RETRY,
            max_attempts: Self::MAX_ATTEMPTS,
            poll: Duration::from_secs(1),
            public_url: public_url.to_owned(),
            sealer: read_sealer(env),
        }
    }
}

/// The sealing keys; a key that does not read, or a previous key without a current one, is a
/// problem of the configuration.
fn read_sealer<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Option<Sealer> {
    let mut key = |name: &str| {
        let text = env.optional(name)?;
        SealingKey::from_base64(&text)
            .map_err(|e| env.problem(format!("{name}: {e}")))
            .ok()
    };
    let current = key("BERTH_SEALING_KEY");
    let previous = key("BERTH_SEALING_KEY_PREVIOUS");
    if current.is_none() && previous.is_some() {
        env.problem(
            "BERTH_SEALING_KEY_PREVIOUS is set without BERTH_SEALING_KEY: set the new key too",
        );
    }
    current.map(|c| Sealer::new(c, previous))
}

/// Email over SMTP; `None` from [`MailSettings::read`] when `BERTH_SMTP_URL` is not set.
#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, for a local catcher), `smtp://…?tls=required` (STARTTLS) or
    /// `smtps://user:password@host` — may hold a password, so kept secret.
    pub smtp_url: SecretString,
    /// The sender (`BERTH_MAIL_FROM`, e.g. `Berth <berth@seaview.example>`).
    pub from: Mailbox,
    pub public_url: String,
    pub retry: Backoff,
    pub max_attempts: u32,
    pub poll: Duration,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &"[redacted]")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    /// Eight attempts over about an hour.
    pub const RETRY: Backoff = Backoff {
        initial: Duration::from_secs(30),
        factor: 2,
        max: Duration::from_secs(30 * 60),
        jitter: 0.2,
    };

    pub fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, public_url: &str) -> Option<Self> {
        let url = env.optional("BERTH_SMTP_URL")?;
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            // The value may hold a password: never repeat it.
            env.problem("BERTH_SMTP_URL: expected smtp://host:port or smtps://user:password@host");
        }
        let from = env
            .required(
                "BERTH_MAIL_FROM",
                "the sender of Berth's emails, e.g. Berth <berth@example.com>",
            )
            .parse::<Mailbox>()
            .map_err(|e| env.problem(format!("BERTH_MAIL_FROM: not an email address ({e})")))
            .ok()?;
        Some(Self {
            smtp_url: SecretString::from(url),
            from,
            public_url: public_url.to_owned(),
            retry: Self::RETRY,
            max_attempts: 8,
            poll: Duration::from_secs(1),
        })
    }

    /// The SMTP server's host and port, for the log (without credentials).
    pub fn server(&self) -> String {
        let url = self.smtp_url.expose_secret();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split(['/', '?']).next().unwrap_or_default().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |k| map.get(k).cloned())
    }

    #[test]
    fn email_is_off_without_an_smtp_url_and_never_shows_its_password() {
        let mut e = env(&[]);
        assert!(MailSettings::read(&mut e, "http://x").is_none());
        assert!(e.finish(|| ()).is_ok());

        let mut e = env(&[(
            "BERTH_SMTP_URL",
            "smtps://berth:hunter2@mail.example.com:465",
        )]);
        assert!(MailSettings::read(&mut e, "http://x").is_none());
        let err = e.finish(|| ()).unwrap_err().to_string();
        assert!(err.contains("BERTH_MAIL_FROM: missing"), "{err}");

        let mut e = env(&[
            (
                "BERTH_SMTP_URL",
                "smtps://berth:hunter2@mail.example.com:465",
            ),
            ("BERTH_MAIL_FROM", "Berth <berth@seaview.example>"),
        ]);
        let mail = MailSettings::read(&mut e, "http://x").unwrap();
        assert_eq!(mail.server(), "mail.example.com:465");
        assert!(!format!("{mail:?}").contains("hunter2"));

        let mut e = env(&[
            ("BERTH_SMTP_URL", "http://hunter2@x"),
            ("BERTH_MAIL_FROM", "nope"),
        ]);
        assert!(MailSettings::read(&mut e, "http://x").is_none());
        let err = e.finish(|| ()).unwrap_err().to_string();
        assert!(err.contains("BERTH_SMTP_URL: expected"), "{err}");
        assert!(
            err.contains("BERTH_MAIL_FROM: not an email address"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn sealing_keys_are_read_and_their_problems_named_without_the_key() {
        const A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let mut e = env(&[]);
        assert!(WebhookSettings::read(&mut e, "http://x").sealer.is_none());
        assert!(e.finish(|| ()).is_ok());

        let mut e = env(&[("BERTH_SEALING_KEY", A)]);
        let sealer = WebhookSettings::read(&mut e, "http://x").sealer.unwrap();
        assert_eq!(sealer.key_id(), SealingKey::from_base64(A).unwrap().id());
        assert!(e.finish(|| ()).is_ok());

        let mut e = env(&[
            ("BERTH_SEALING_KEY", "c2hvcnRrZXk="),
            ("BERTH_SEALING_KEY_PREVIOUS", A),
        ]);
        assert!(WebhookSettings::read(&mut e, "http://x").sealer.is_none());
        let err = e.finish(|| ()).unwrap_err().to_string();
        assert!(
            err.contains("BERTH_SEALING_KEY: a sealing key is 32"),
            "{err}"
        );
        assert!(err.contains("this one is 8 bytes"), "{err}");
        assert!(
            err.contains("BERTH_SEALING_KEY_PREVIOUS is set without"),
            "{err}"
        );
        assert!(!err.contains("c2hvcnRrZXk") && !err.contains(A), "{err}");
    }

    #[test]
    fn webhook_retries_last_about_a_day() {
        let total: Duration = (1..WebhookSettings::MAX_ATTEMPTS)
            .map(|n| WebhookSettings::RETRY.base_delay(n))
            .sum();
        assert!(
            (Duration::from_secs(22 * 3600)..Duration::from_secs(26 * 3600)).contains(&total),
            "{total:?}"
        );
        let mut e = env(&[("BERTH_WEBHOOKS_ALLOW_PRIVATE", "true")]);
        let s = WebhookSettings::read(&mut e, "http://127.0.0.1:3000");
        assert!(s.allow_private);
        assert_eq!(s.timeout, Duration::from_secs(10));
    }
}
