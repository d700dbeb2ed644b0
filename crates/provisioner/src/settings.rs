//! The worker's settings, read from `BERTH_*` variables by both the server (in-process
//! worker) and the standalone `berth-engine-worker`, with every problem listed at once.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_aws::{AwsSettings, AwsStage, TagScheme};
use berth_blueprint::Templates;
use berth_rancher::{ApiToken, RancherClient, RancherConfig};
use berth_settings::{Env, Problems, SecretString};

use berth_runs::EngineConfig;

use crate::{Provisioner, ProvisionerSettings};

/// Everything a worker needs to provision units.
#[derive(Clone)]
pub struct WorkerSettings {
    pub rancher_url: String,
    pub rancher_token: SecretString,
    pub rancher_poll: Duration,
    pub aws: AwsSettings,
    pub provisioner: ProvisionerSettings,
    pub engine: EngineConfig,
}

impl fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("rancher_url", &self.rancher_url)
            .field("rancher_token", &"[redacted]")
            .field("aws", &self.aws)
            .field("provisioner", &self.provisioner)
            .field("engine", &self.engine)
            .finish()
    }
}

/// Where the blueprints and values templates live (`BERTH_TEMPLATES`, default `templates`).
pub fn templates_dir<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> PathBuf {
    PathBuf::from(
        env.optional("BERTH_TEMPLATES")
            .unwrap_or_else(|| "templates".into()),
    )
}

impl WorkerSettings {
    /// Reads the worker's settings through `get` (the environment in production, a map in
    /// tests); see [`WorkerSettings::read`] for the variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Problems> {
        let mut env = Env::new(get);
        let settings = Self::read(&mut env);
        env.finish(|| settings)
    }

    /// Reads `BERTH_RANCHER_URL`, `BERTH_RANCHER_TOKEN`, `BERTH_RANCHER_CLUSTER` (default
    /// `berth`), `BERTH_RANCHER_POLL_MS` (2000), `BERTH_DOMAIN`, `BERTH_REGISTRY_SERVER`,
    /// `BERTH_REGISTRY_USERNAME`, `BERTH_REGISTRY_PASSWORD`, optional `BERTH_KMS_KEY_ID`,
    /// `BERTH_EXISTING_BUCKET`, `BERTH_UNIT_PERMISSIONS_BOUNDARY`, `BERTH_TAG_KEY`/`BERTH_TAG_VALUE` (default `{company}` /
    /// `{unit}`), the standard `AWS_REGION`/`AWS_ENDPOINT_URL`, and
    /// `BERTH_ENGINE_LEASE_MS` (30000), `BERTH_ENGINE_HEARTBEAT_MS` (10000),
    /// `BERTH_ENGINE_CONCURRENCY` (8), `BERTH_ENGINE_POLL_MS` (1000), optional
    /// `BERTH_RANCHER_LEGACY_CATALOG` (install as legacy v3 apps from that cluster catalog) and
    /// `BERTH_SECRET_RECOVERY_DAYS` (7: how long a decommissioned unit's secrets stay
    /// recoverable).
    ///
    /// Problems go to `env`, beside the caller's own; the value is only meant to be used when
    /// [`Env::finish`] finds none.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let rancher_url = env.required("BERTH_RANCHER_URL", "the Rancher server, https://…");
        let rancher_token = env.secret("BERTH_RANCHER_TOKEN", "a Rancher API token");
        let domain = env.required("BERTH_DOMAIN", "the cluster's ingress DNS domain");
        let registry_server = env.required("BERTH_REGISTRY_SERVER", "the image registry host");
        let registry_username = env.required("BERTH_REGISTRY_USERNAME", "registry pull user");
        let registry_password = env.secret("BERTH_REGISTRY_PASSWORD", "registry pull password");
        if !rancher_url.is_empty() {
            if let Err(why) = check_rancher_url(&rancher_url) {
                env.problem(format!("BERTH_RANCHER_URL: {why}, got '{rancher_url}'"));
            }
        }

        let rancher_poll = env.millis("BERTH_RANCHER_POLL_MS", 2000);
        let mut engine = EngineConfig {
            lease: env.millis("BERTH_ENGINE_LEASE_MS", 30_000),
            heartbeat: env.millis("BERTH_ENGINE_HEARTBEAT_MS", 10_000),
            poll_interval: env.millis("BERTH_ENGINE_POLL_MS", 1000),
            ..EngineConfig::default()
        };
        if let Some(n) = env.parse("BERTH_ENGINE_CONCURRENCY", "a number") {
            engine.concurrency = n;
        }
        if let Err(p) = engine.validate() {
            env.extend(p);
        }

        let defaults = TagScheme::default();
        let tag_scheme = TagScheme {
            key: env.optional("BERTH_TAG_KEY").unwrap_or(defaults.key),
            value: env.optional("BERTH_TAG_VALUE").unwrap_or(defaults.value),
        };
        if let Err(e) = tag_scheme.validate() {
            env.problem(format!("BERTH_TAG_KEY/BERTH_TAG_VALUE: {e}"));
        }

        // Legacy v3 apps from a cluster catalog (`catalog=<name>&type=clusterCatalog`), as the
        // customer's own scripts installed them; Apps & Marketplace when unset.
        let legacy_catalog =
            env.optional("BERTH_RANCHER_LEGACY_CATALOG")
                .map(|name| berth_rancher::LegacyCatalog {
                    name,
                    scope: berth_rancher::CatalogScope::Cluster {
                        qualified_with: None,
                    },
                });
        let secret_recovery_days = env
            .parse::<u16>(
                "BERTH_SECRET_RECOVERY_DAYS",
                "a number of days from 7 to 30",
            )
            .unwrap_or(7);
        if !(7..=30).contains(&secret_recovery_days) {
            env.problem(format!(
                "BERTH_SECRET_RECOVERY_DAYS: Secrets Manager keeps a secret 7 to 30 days, not {secret_recovery_days}"
            ));
        }
        Self {
            rancher_url,
            rancher_token,
            rancher_poll,
            aws: AwsSettings {
                region: env.optional("AWS_REGION"),
                endpoint_url: env.optional("AWS_ENDPOINT_URL"),
                tag_scheme,
            },
            provisioner: ProvisionerSettings {
                cluster: env
                    .optional("BERTH_RANCHER_CLUSTER")
                    .unwrap_or_else(|| "berth".into()),
                domain,
                registry_server,
                registry_username,
                registry_password,
                kms_key_id: env.optional("BERTH_KMS_KEY_ID"),
                existing_bucket: env.optional("BERTH_EXISTING_BUCKET"),
                permissions_boundary: env.optional("BERTH_UNIT_PERMISSIONS_BOUNDARY"),
                legacy_catalog,
                secret_recovery_days,
            },
            engine,
        }
    }

    /// Connects the AWS and Rancher clients and assembles the step executor.
    /// The provisioning engine and the plan worker, sharing one [`Provisioner`].
    pub async fn workers(
        &self,
        pool: sqlx::PgPool,
        templates: Arc<Templates>,
    ) -> Result<Workers, String> {
        let provisioner = Arc::new(self.provisioner(templates).await?);
        Ok(Workers {
            engine: berth_runs::Engine::with_config(
                pool.clone(),
                provisioner.clone(),
                self.engine.clone(),
            ),
            plans: berth_runs::PlanWorker::new(
                pool,
                provisioner,
                berth_runs::PlanWorkerConfig::default(),
            ),
        })
    }

    pub async fn provisioner(&self, templates: Arc<Templates>) -> Result<Provisioner, String> {
        use berth_settings::ExposeSecret;
        let aws = AwsStage::connect(&self.aws)
            .await
            .map_err(|e| format!("AWS: {e}"))?;
        let mut rancher = RancherConfig::new(
            self.rancher_url.clone(),
            ApiToken::new(self.rancher_token.expose_secret().to_owned()),
        );
        rancher.poll_interval = self.rancher_poll;
        let rancher = RancherClient::new(rancher).map_err(|e| format!("Rancher: {e}"))?;
        Ok(Provisioner::new(
            aws,
            templates,
            rancher,
            self.provisioner.clone(),
        ))
    }
}

/// The Rancher token travels with every call: https, except to a server on this machine (the
/// simulator in development and tests).
fn check_rancher_url(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "expected https://host")?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("expected https://host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must be https:// (plain http only to this machine's loopback)"),
        _ => Err("expected https://host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<WorkerSettings, Problems> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorkerSettings::from_lookup(|k| map.get(k).cloned())
    }

    const FULL: [(&str, &str); 6] = [
        ("BERTH_RANCHER_URL", "https://rancher.example.com"),
        ("BERTH_RANCHER_TOKEN", "token-abc:secretpart"),
        ("BERTH_DOMAIN", "apps.example.com"),
        ("BERTH_REGISTRY_SERVER", "registry.example.com"),
        ("BERTH_REGISTRY_USERNAME", "puller"),
        ("BERTH_REGISTRY_PASSWORD", "pull-password"),
    ];

    #[test]
    fn defaults_and_redaction() {
        let s = load(&FULL).unwrap();
        assert_eq!(s.provisioner.cluster, "berth");
        assert_eq!(s.aws.tag_scheme, TagScheme::default());
        let shown = format!("{s:?}");
        assert!(!shown.contains("secretpart"), "{shown}");
        assert!(!shown.contains("pull-password"), "{shown}");
    }

    #[test]
    fn the_rancher_token_goes_over_https_except_to_loopback() {
        for ok in [
            "https://rancher.example.com",
            "https://10.0.0.5:8443",
            "http://127.0.0.1:8444",
            "http://localhost:8444",
            "http://[::1]:8444",
        ] {
            assert_eq!(check_rancher_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://rancher.example.com",
            "http://10.0.0.5",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "rancher.example.com",
            "https://",
        ] {
            assert!(check_rancher_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_listed() {
        let problems = load(&[
            ("BERTH_RANCHER_URL", "rancher.example.com"),
            ("BERTH_ENGINE_LEASE_MS", "soon"),
            ("BERTH_ENGINE_HEARTBEAT_MS", "40000"),
        ])
        .unwrap_err();
        let text = problems.0.join("\n");
        for needle in [
            "BERTH_RANCHER_URL: expected",
            "BERTH_RANCHER_TOKEN: missing",
            "BERTH_DOMAIN: missing",
            "BERTH_REGISTRY_PASSWORD: missing",
            "BERTH_ENGINE_LEASE_MS",
            "heartbeat",
        ] {
            assert!(text.contains(needle), "{needle} not in:\n{text}");
        }
    }
}

/// A worker process's two loops: steps of approved runs, and plans of requests.
#[derive(Clone)]
pub struct Workers {
    pub engine: berth_runs::Engine<Arc<Provisioner>>,
    pub plans: berth_runs::PlanWorker<Arc<Provisioner>>,
}

impl Workers {
    pub fn provisioner(&self) -> &Provisioner {
        self.engine.executor()
    }

    /// Runs both loops until `shutdown` resolves (running steps get their grace period).
    pub async fn run_until(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), berth_runs::EngineError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let plans = {
            let plans = self.plans.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                plans
                    .run_until(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            })
        };
        let engine = self.engine.run_until(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let result = engine.await;
        if let Err(e) = plans.await {
            tracing::error!(error = %e, "the plan worker panicked");
        }
        result
    }
}
