//! Settings read once at start-up from the environment, validated together so one error lists
//! every missing or invalid value.

use std::{fmt, net::SocketAddr, time::Duration};

use berth_settings::{DatabaseUrl, Env};

/// Every configuration problem found, one per line (shared with the worker's settings).
pub use berth_settings::Problems as ConfigError;

/// Every single sign-on setting (docs/sso.md); any of them set means single sign-on is meant.
const OIDC_VARIABLES: [&str; 9] = {
    use berth_auth::settings::env::*;
    [
        ISSUER,
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URL,
        SCOPES,
        GROUPS_CLAIM,
        ROLE_MAP,
        POST_LOGOUT_REDIRECT_URL,
        RECHECK_SECS,
    ]
};

/// Berth's own settings (Leptos reads its `LEPTOS_*` settings itself).
#[derive(Clone)]
pub struct Settings {
    /// Holds a password: `Debug` redacts it; only the connection exposes it.
    pub database_url: DatabaseUrl,
    pub company_name: String,
    pub company_slug: String,
    pub site_addr: SocketAddr,
    /// The origin people use in their browser (scheme://host[:port]); used by the CSRF check.
    pub public_origin: String,
    /// Cookies marked `Secure` with the `__Host-` prefix; off only for plain-http local dev.
    pub secure_cookies: bool,
    pub session_idle: Duration,
    /// Signed-in sessions end this long after sign-in, however active.
    pub session_absolute: Duration,
    /// Development sign-in: pick a seeded demo user. Loopback addresses only, and never on a
    /// server with single sign-on (start-up refuses both at once).
    pub dev_login: bool,
    /// Seed the demo users on start-up.
    pub seed_demo: bool,
    pub db_max_connections: u32,
    pub log_json: bool,
    /// Single sign-on, when `BERTH_OIDC_ISSUER` is set.
    pub oidc: Option<berth_auth::OidcSettings>,
    /// Blueprints and values templates (`BERTH_TEMPLATES`, default `templates`).
    pub templates_dir: std::path::PathBuf,
    /// The in-process provisioning worker; `None` with `BERTH_WORKER=false` (approvals still
    /// enqueue runs, which `server worker` processes elsewhere then drain).
    pub worker: Option<berth_provisioner::WorkerSettings>,
    /// Calls a minute each API token may make on average (`BERTH_API_RATE_PER_MINUTE`), and at
    /// once (`BERTH_API_BURST`).
    pub api_rate_per_minute: std::num::NonZeroU32,
    pub api_burst: std::num::NonZeroU32,
    /// Webhook deliveries and, with `BERTH_SMTP_URL`, email.
    pub notify: berth_notify::NotifySettings,
    /// What one caller may take of the server: bodies, time, live streams.
    pub limits: Limits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`BERTH_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::middleware::client_addr::TrustedProxies,
}

/// The server's own limits, set here rather than inherited from a dependency's defaults
/// (docs/security.md lists them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body accepted (`BERTH_MAX_BODY_KB`, default 1024); larger gets 413.
    pub body_bytes: usize,
    /// Time to produce a response's head (`BERTH_REQUEST_TIMEOUT_SECONDS`, default 30); a
    /// streamed body (exports, live progress) may take longer once started.
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers, and between the parts of its body
    /// (`BERTH_CLIENT_TIMEOUT_SECONDS`, default 10): slow clients are cut off.
    pub client_timeout: Duration,
    /// Live-progress streams open at once per session or API token
    /// (`BERTH_STREAMS_PER_SESSION`, default 10) and in all (`BERTH_STREAMS_TOTAL`, 2000).
    pub streams_per_session: usize,
    pub streams_total: usize,
    /// How often an open stream checks its reader may still read
    /// (`BERTH_STREAM_RECHECK_SECONDS`, default 60).
    pub stream_recheck: Duration,
}

impl Limits {
    fn read(env: &mut Env<impl Fn(&str) -> Option<String>>) -> Self {
        let secs = |n: u64| Duration::from_secs(n);
        Self {
            body_bytes: usize::try_from(env.positive("BERTH_MAX_BODY_KB", 1024))
                .unwrap_or(usize::MAX / 1024)
                .saturating_mul(1024),
            request_timeout: secs(env.positive("BERTH_REQUEST_TIMEOUT_SECONDS", 30)),
            client_timeout: secs(env.positive("BERTH_CLIENT_TIMEOUT_SECONDS", 10)),
            streams_per_session: env.positive("BERTH_STREAMS_PER_SESSION", 10) as usize,
            streams_total: env.positive("BERTH_STREAMS_TOTAL", 2000) as usize,
            stream_recheck: secs(env.positive("BERTH_STREAM_RECHECK_SECONDS", 60)),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &self.database_url)
            .field("company_name", &self.company_name)
            .field("company_slug", &self.company_slug)
            .field("site_addr", &self.site_addr)
            .field("public_origin", &self.public_origin)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_idle", &self.session_idle)
            .field("dev_login", &self.dev_login)
            .field("seed_demo", &self.seed_demo)
            .field("oidc", &self.oidc.as_ref().map(|o| &o.issuer_url))
            .field("templates_dir", &self.templates_dir)
            .field("worker", &self.worker)
            .field("api_rate_per_minute", &self.api_rate_per_minute)
            .field("api_burst", &self.api_burst)
            .field("notify", &self.notify)
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env(site_addr: SocketAddr) -> Result<Self, ConfigError> {
        Self::from_lookup(site_addr, |k| std::env::var(k).ok())
    }

    /// Reads the process environment for a command that signs nobody in (`server worker`,
    /// `server migrate`, …): the sign-in settings are neither required nor read, so a worker
    /// needs no identity-provider client secret.
    pub fn from_env_without_sign_in(site_addr: SocketAddr) -> Result<Self, ConfigError> {
        Self::read(site_addr, |k| std::env::var(k).ok(), false)
    }

    /// Reads settings through `get` (the environment in production, a map in tests).
    pub fn from_lookup(
        site_addr: SocketAddr,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::read(site_addr, get, true)
    }

    fn read(
        site_addr: SocketAddr,
        get: impl Fn(&str) -> Option<String>,
        signs_in: bool,
    ) -> Result<Self, ConfigError> {
        let mut env = Env::new(get);
        let dev_login = env.flag("BERTH_DEV_LOGIN", false);
        let seed_demo = env.flag("BERTH_SEED_DEMO", false);
        let log_json = env.flag("BERTH_LOG_JSON", false);
        let run_worker = env.flag("BERTH_WORKER", true);
        let secure_default = !site_addr.ip().is_loopback();
        let secure_cookies = env.flag("BERTH_SECURE_COOKIES", secure_default);

        let database_url = env.database_url();

        let company_name = env
            .optional("BERTH_COMPANY_NAME")
            .unwrap_or_else(|| "SeaView".into());
        let company_slug = env
            .optional("BERTH_COMPANY_SLUG")
            .unwrap_or_else(|| berth_domain::UnitSlug::suggest(&company_name));
        if let Err(e) = berth_domain::UnitSlug::parse(&company_slug) {
            env.problem(format!("BERTH_COMPANY_SLUG ('{company_slug}'): {e}"));
        }

        let public_origin = env
            .optional("BERTH_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{site_addr}"));
        if !(public_origin.starts_with("http://") || public_origin.starts_with("https://"))
            || public_origin["https://".len().min(public_origin.len())..].contains('/')
        {
            env.problem(format!(
                "BERTH_PUBLIC_URL: expected an origin such as https://berth.example.com, got '{public_origin}'"
            ));
        }
        if secure_cookies && public_origin.starts_with("http://") && !site_addr.ip().is_loopback() {
            env.problem("BERTH_PUBLIC_URL: secure cookies need an https:// public URL");
        }

        let session_idle = Duration::from_secs(60 * env.positive("BERTH_SESSION_IDLE_MINUTES", 60));
        let session_absolute =
            Duration::from_secs(3600 * env.positive("BERTH_SESSION_ABSOLUTE_HOURS", 12));
        let db_max_connections = env.positive("BERTH_DB_MAX_CONNECTIONS", 10) as u32;
        let non_zero = |n: u64| {
            std::num::NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))
                .unwrap_or(std::num::NonZeroU32::MIN)
        };
        let api_rate_per_minute = non_zero(env.positive("BERTH_API_RATE_PER_MINUTE", 600));
        let api_burst = non_zero(env.positive("BERTH_API_BURST", 60));
        let limits = Limits::read(&mut env);
        let trusted_proxies = crate::middleware::client_addr::TrustedProxies::parse(
            &env.optional("BERTH_TRUSTED_PROXIES").unwrap_or_default(),
        )
        .unwrap_or_else(|e| {
            env.problem(format!("BERTH_TRUSTED_PROXIES: {e}"));
            Default::default()
        });

        if dev_login && !site_addr.ip().is_loopback() {
            env.problem(format!(
                "BERTH_DEV_LOGIN: the development sign-in is only allowed on a loopback address, \
                 but the server would listen on {site_addr}"
            ));
        }

        let sso = signs_in && env.optional("BERTH_OIDC_ISSUER").is_some();
        let oidc = if sso {
            match berth_auth::OidcSettings::from_lookup(env.lookup()) {
                Ok(o) => Some(o),
                Err(e) => {
                    env.extend(
                        e.problems
                            .into_iter()
                            .map(|p| format!("{}: {}", p.variable, p.message)),
                    );
                    None
                }
            }
        } else {
            None
        };
        // One way to sign in per server: a demo account must never be a way around the
        // company's identity provider. Any BERTH_OIDC_* setting counts, so a half-removed
        // single sign-on configuration is not silently ignored either.
        if signs_in && dev_login {
            let set: Vec<&str> = OIDC_VARIABLES
                .into_iter()
                .filter(|k| env.optional(k).is_some())
                .collect();
            if !set.is_empty() {
                env.problem(format!(
                    "BERTH_DEV_LOGIN: the development sign-in cannot be on while single sign-on \
                     is configured ({} set); pick one: unset BERTH_DEV_LOGIN to sign in through \
                     the identity provider, or unset the BERTH_OIDC_* settings for the \
                     development sign-in (local development only)",
                    set.join(", ")
                ));
            }
        }
        if signs_in && !dev_login && !sso {
            env.problem(
                "no way to sign in: set BERTH_OIDC_ISSUER and the other BERTH_OIDC_* settings \
                 (see docs/sso.md), or BERTH_DEV_LOGIN=true on a loopback address",
            );
        }

        let notify = berth_notify::NotifySettings::read(&mut env, &public_origin);

        let templates_dir = berth_provisioner::templates_dir(&env);
        // The worker's problems join the server's, so start-up lists them all at once.
        let worker = run_worker.then(|| berth_provisioner::WorkerSettings::read(&mut env));

        env.finish(|| Self {
            database_url,
            company_name,
            company_slug,
            site_addr,
            public_origin,
            secure_cookies,
            session_idle,
            session_absolute,
            dev_login,
            seed_demo,
            db_max_connections,
            log_json,
            oidc,
            templates_dir,
            worker,
            api_rate_per_minute,
            api_burst,
            notify,
            limits,
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Loads `vars`; the worker is off unless `vars` turn it on.
    fn load(addr: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = [("BERTH_WORKER", "false")]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(addr.parse().unwrap(), |k| map.get(k).cloned())
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://u:p@127.0.0.1/db");
    const SSO: [(&str, &str); 4] = [
        (
            "BERTH_OIDC_ISSUER",
            "https://sso.seaview.example/realms/seaview",
        ),
        ("BERTH_OIDC_CLIENT_ID", "berth"),
        ("BERTH_OIDC_CLIENT_SECRET", "s3cret"),
        (
            "BERTH_OIDC_REDIRECT_URL",
            "https://berth.example.com/auth/callback",
        ),
    ];

    #[test]
    fn commands_that_sign_nobody_in_need_no_sign_in_settings() {
        let vars: HashMap<String, String> = [
            ("BERTH_WORKER", "false"),
            DB,
            ("BERTH_OIDC_ISSUER", "https://login.example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let addr = "127.0.0.1:3000".parse().unwrap();
        let lookup = |k: &str| vars.get(k).cloned();
        // Serving needs the client secret and the rest of the sign-in settings...
        assert!(Settings::from_lookup(addr, lookup).is_err());
        // ...a worker does not read them.
        let worker = Settings::read(addr, lookup, false).unwrap();
        assert!(worker.oidc.is_none());
    }

    #[test]
    fn defaults_are_safe() {
        let s = load("127.0.0.1:3000", &[DB, ("BERTH_DEV_LOGIN", "true")]).unwrap();
        assert!(s.oidc.is_none());
        assert!(!s.secure_cookies, "plain http on loopback");
        assert_eq!(s.company_slug, "seaview");
        assert_eq!(s.public_origin, "http://127.0.0.1:3000");
        let mut vars = vec![DB, ("BERTH_PUBLIC_URL", "https://berth.example.com")];
        vars.extend(SSO);
        vars.push(("BERTH_OIDC_ROLE_MAP", "berth-admins=admin"));
        let s = load("0.0.0.0:3000", &vars).unwrap();
        assert!(s.secure_cookies, "secure by default off loopback");
        assert!(!s.dev_login);
        assert!(s.oidc.is_some());
    }

    #[test]
    fn the_worker_needs_its_settings() {
        let err = load(
            "127.0.0.1:3000",
            &[DB, ("BERTH_DEV_LOGIN", "true"), ("BERTH_WORKER", "true")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("BERTH_RANCHER_URL: missing"), "{err}");
        assert!(err.contains("BERTH_DOMAIN: missing"), "{err}");
        let s = load("127.0.0.1:3000", &[DB, ("BERTH_DEV_LOGIN", "true")]).unwrap();
        assert!(s.worker.is_none());
        assert_eq!(s.templates_dir, std::path::PathBuf::from("templates"));
    }

    #[test]
    fn dev_login_is_refused_off_loopback() {
        for addr in ["0.0.0.0:3000", "192.168.1.10:3000", "[::]:3000"] {
            let err = load(
                addr,
                &[
                    DB,
                    ("BERTH_DEV_LOGIN", "true"),
                    ("BERTH_PUBLIC_URL", "https://berth.example.com"),
                ],
            )
            .unwrap_err();
            assert!(err.to_string().contains("loopback"), "{addr}: {err}");
        }
        assert!(
            load("127.0.0.1:3000", &[DB, ("BERTH_DEV_LOGIN", "true")])
                .unwrap()
                .dev_login
        );
        assert!(
            load("[::1]:3000", &[DB, ("BERTH_DEV_LOGIN", "1")])
                .unwrap()
                .dev_login
        );
    }

    #[test]
    fn dev_login_is_refused_when_single_sign_on_is_configured() {
        let mut sso = vec![DB, ("BERTH_OIDC_ROLE_MAP", "berth-admins=admin")];
        sso.extend(SSO);
        // Both at once: refused, naming what is set, and saying to pick one.
        for on in ["true", "1"] {
            let mut vars = sso.clone();
            vars.push(("BERTH_DEV_LOGIN", on));
            let err = load("127.0.0.1:3000", &vars).unwrap_err().to_string();
            assert!(err.contains("pick one"), "{err}");
            assert!(err.contains("BERTH_DEV_LOGIN"), "{err}");
            assert!(err.contains("BERTH_OIDC_ISSUER"), "{err}");
            assert!(!err.contains("s3cret"), "a secret in the error: {err}");
        }
        // Any single sign-on setting counts: a half-removed configuration is not ignored.
        let err = load(
            "127.0.0.1:3000",
            &[
                DB,
                ("BERTH_DEV_LOGIN", "true"),
                ("BERTH_OIDC_CLIENT_SECRET", "s3cret"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pick one"), "{err}");
        assert!(err.contains("BERTH_OIDC_CLIENT_SECRET"), "{err}");
        assert!(!err.contains("s3cret"), "a secret in the error: {err}");
        // Blank settings are unset.
        let s = load(
            "127.0.0.1:3000",
            &[DB, ("BERTH_DEV_LOGIN", "true"), ("BERTH_OIDC_ISSUER", " ")],
        )
        .unwrap();
        assert!(s.dev_login && s.oidc.is_none());
        // Either one alone starts.
        let s = load("127.0.0.1:3000", &sso).unwrap();
        assert!(!s.dev_login && s.oidc.is_some());
        let mut off = sso.clone();
        off.push(("BERTH_DEV_LOGIN", "false"));
        let s = load("127.0.0.1:3000", &off).unwrap();
        assert!(!s.dev_login && s.oidc.is_some());
        // Commands that sign nobody in read neither.
        let mut both = sso.clone();
        both.extend([("BERTH_WORKER", "false"), ("BERTH_DEV_LOGIN", "true")]);
        let map: HashMap<&str, &str> = both.into_iter().collect();
        let addr = "127.0.0.1:3000".parse().unwrap();
        let worker = Settings::read(addr, |k| map.get(k).map(|v| v.to_string()), false).unwrap();
        assert!(worker.oidc.is_none());
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = load(
            "127.0.0.1:3000",
            &[
                ("BERTH_DEV_LOGIN", "maybe"),
                ("BERTH_SESSION_IDLE_MINUTES", "-3"),
                ("BERTH_COMPANY_SLUG", "Sea View"),
            ],
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "DATABASE_URL",
            "BERTH_DEV_LOGIN",
            "BERTH_SESSION_IDLE_MINUTES",
            "BERTH_COMPANY_SLUG",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(text.contains("no way to sign in"), "{text}");
        assert_eq!(err.0.len(), 5);
    }

    #[test]
    fn single_sign_on_problems_are_listed_with_the_rest() {
        let err = load(
            "127.0.0.1:3000",
            &[
                DB,
                ("BERTH_OIDC_ISSUER", "https://sso.example"),
                ("BERTH_SESSION_IDLE_MINUTES", "x"),
            ],
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "BERTH_OIDC_CLIENT_ID",
            "BERTH_OIDC_CLIENT_SECRET",
            "BERTH_OIDC_ROLE_MAP",
            "BERTH_SESSION_IDLE_MINUTES",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn debug_hides_the_database_password() {
        let s = load("127.0.0.1:3000", &[DB, ("BERTH_DEV_LOGIN", "true")]).unwrap();
        assert!(!format!("{s:?}").contains("u:p@"));
    }
}
