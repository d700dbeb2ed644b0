//! Shared by the provisioner's test binaries: the AWS stage on the emulator, a Rancher client
//! on the in-process simulator, and a provisioner with the settings the tests' workers use.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::config::{Credentials, SharedCredentialsProvider};
use berth_aws::{AwsSettings, AwsStage, TagScheme, WaitPolicy};
use berth_provisioner::{Provisioner, ProvisionerSettings};
use berth_rancher::{ApiToken, HttpRetries, RancherClient, RancherConfig};
use berth_rancher_sim::RancherSim;
use berth_runs::testing::templates;
use berth_testkit::emulator::endpoint;
use secrecy::SecretString;

pub const REGISTRY_PASSWORD: &str = "Registry-Pass\"word-7d1f";

pub async fn aws_stage() -> AwsStage {
    let settings = AwsSettings {
        region: Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into())),
        endpoint_url: Some(endpoint()),
        tag_scheme: TagScheme::default(),
    };
    let mut config = berth_aws::load_sdk_config(&settings).await.unwrap();
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        config = config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "berth-provisioner-tests",
            )))
            .build();
    }
    AwsStage::from_sdk_config(&config, TagScheme::default(), WaitPolicy::default())
}

pub fn rancher(sim: &RancherSim) -> RancherClient {
    let mut cfg = RancherConfig::new(sim.url(), ApiToken::new(sim.admin_token()));
    cfg.request_timeout = Duration::from_secs(5);
    cfg.retry = HttpRetries::doubling(4, Duration::from_millis(10), Duration::from_millis(200));
    cfg.poll_interval = Duration::from_millis(10);
    cfg.activation_timeout = Duration::from_secs(10);
    cfg.operation_grace = Duration::from_secs(5);
    cfg.confirm_timeout = Duration::from_secs(2);
    RancherClient::new(cfg).unwrap()
}

pub fn provisioner(aws: AwsStage, client: RancherClient) -> Provisioner {
    provisioner_with(aws, client, templates())
}

/// The same settings as [`provisioner`], with other templates (edited by a test).
pub fn provisioner_with(
    aws: AwsStage,
    client: RancherClient,
    templates: berth_blueprint::Templates,
) -> Provisioner {
    provisioner_in_mode(aws, client, templates, false)
}

/// [`provisioner_with`] installing charts as legacy v3 apps from the `stable` cluster catalog
/// when `legacy` (the simulator must serve them: `SimConfig::legacy_apps`).
pub fn provisioner_in_mode(
    aws: AwsStage,
    client: RancherClient,
    templates: berth_blueprint::Templates,
    legacy: bool,
) -> Provisioner {
    Provisioner::new(
        aws,
        Arc::new(templates),
        client,
        ProvisionerSettings {
            cluster: "berth".into(),
            domain: "apps.seaview.example".into(),
            registry_server: "registry.seaview.example".into(),
            registry_username: "puller".into(),
            registry_password: SecretString::from(REGISTRY_PASSWORD.to_owned()),
            kms_key_id: None,
            existing_bucket: None,
            permissions_boundary: None,
            legacy_catalog: legacy.then(|| berth_rancher::LegacyCatalog {
                name: "stable".into(),
                scope: berth_rancher::CatalogScope::Cluster {
                    qualified_with: None,
                },
            }),
            secret_recovery_days: 7,
        },
    )
}

/// A copy of the repository's `templates/` in a fresh temporary folder, with `edit` applied to
/// the file at `relative` (e.g. `values/dsm.yaml.j2`); the folder goes when the returned guard
/// is dropped.
pub fn edited_templates(
    relative: &str,
    edit: impl FnOnce(String) -> String,
) -> (berth_blueprint::Templates, tempfile::TempDir) {
    let folder = tempfile::Builder::new()
        .prefix("berth-templates-")
        .tempdir()
        .unwrap();
    let root = folder.path();
    for dir in ["blueprints", "values"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        for entry in std::fs::read_dir(berth_runs::testing::templates_dir().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, root.join(dir).join(path.file_name().unwrap())).unwrap();
        }
    }
    let file = root.join(relative);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, edit(text)).unwrap();
    (berth_blueprint::Templates::open(root).unwrap(), folder)
}
