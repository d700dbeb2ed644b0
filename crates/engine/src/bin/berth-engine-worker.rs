//! A standalone engine worker configured from the environment: the crash-safety and
//! multi-process tests start and SIGKILL it; operators may use it to drain a queue by hand.
//! The product's worker runs inside the server binary, configured by its settings.
//!
//! Variables: `DATABASE_URL`; `BERTH_RANCHER_URL`, `BERTH_RANCHER_TOKEN`,
//! `BERTH_RANCHER_CLUSTER` (default `berth`), `BERTH_RANCHER_POLL_MS` (default 2000);
//! `BERTH_DOMAIN`; `BERTH_REGISTRY_SERVER`, `BERTH_REGISTRY_USERNAME`,
//! `BERTH_REGISTRY_PASSWORD`; `BERTH_TEMPLATES` (default `templates`); the standard AWS
//! variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials); `BERTH_ENGINE_LEASE_MS`
//! (30000), `BERTH_ENGINE_HEARTBEAT_MS` (10000), `BERTH_ENGINE_CONCURRENCY` (8).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_aws::{AwsSettings, AwsStage, TagScheme};
use berth_blueprint::Templates;
use berth_engine::{Engine, EngineConfig, Provisioner, ProvisionerSettings};
use berth_rancher::{ApiToken, RancherClient, RancherConfig};
use secrecy::SecretString;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn millis(name: &str, default: u64) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name} must be a number of milliseconds")),
        Err(_) => Ok(Duration::from_millis(default)),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_smithy_runtime=warn,aws_config=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let pool = sqlx::PgPool::connect(&var("DATABASE_URL")?)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let aws = AwsStage::connect(&AwsSettings {
        region: std::env::var("AWS_REGION").ok(),
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        tag_scheme: TagScheme::default(),
    })
    .await
    .map_err(|e| e.to_string())?;
    let templates = Templates::open(&PathBuf::from(var_or("BERTH_TEMPLATES", "templates")))
        .map_err(|e| e.to_string())?;
    let mut rancher = RancherConfig::new(
        var("BERTH_RANCHER_URL")?,
        ApiToken::new(var("BERTH_RANCHER_TOKEN")?),
    );
    rancher.poll_interval = millis("BERTH_RANCHER_POLL_MS", 2000)?;
    let rancher = RancherClient::new(rancher).map_err(|e| e.to_string())?;
    let provisioner = Provisioner::new(
        aws,
        Arc::new(templates),
        rancher,
        ProvisionerSettings {
            cluster: var_or("BERTH_RANCHER_CLUSTER", "berth"),
            domain: var("BERTH_DOMAIN")?,
            registry_server: var("BERTH_REGISTRY_SERVER")?,
            registry_username: var("BERTH_REGISTRY_USERNAME")?,
            registry_password: SecretString::from(var("BERTH_REGISTRY_PASSWORD")?),
            kms_key_id: None,
            existing_bucket: None,
        },
    );
    let config = EngineConfig {
        lease: millis("BERTH_ENGINE_LEASE_MS", 30_000)?,
        heartbeat: millis("BERTH_ENGINE_HEARTBEAT_MS", 10_000)?,
        concurrency: var_or("BERTH_ENGINE_CONCURRENCY", "8")
            .parse()
            .map_err(|_| "BERTH_ENGINE_CONCURRENCY must be a number".to_string())?,
        poll_interval: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let engine = Engine::with_config(pool, provisioner, config);
    engine
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}
