//! Test harness: an in-process simulator by default, a real Rancher when `RANCHER_URL` and
//! `RANCHER_TOKEN` are set.
#![allow(dead_code)]

use std::time::Duration;

use std::path::PathBuf;

use berth_blueprint::{ClusterFacts, RenderContext, RenderMode, Secrets, Templates, UnitInputs};
use berth_rancher::{
    prepare_target, ApiToken, DeployPlan, HttpRetries, PreparedTarget, RancherClient,
    RancherConfig, TargetSpec,
};
use berth_rancher_sim::{RancherSim, SimConfig};

pub struct Harness {
    pub client: RancherClient,
    /// `None` against a real Rancher: simulator-only assertions are skipped.
    pub sim: Option<RancherSim>,
    pub url: String,
    pub token: String,
    pub cluster: String,
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub old_version: String,
}

/// Quick polls and retries so tests finish fast; behaviour is the same as production's.
pub fn test_config(url: &str, token: &str) -> RancherConfig {
    let mut cfg = RancherConfig::new(url, ApiToken::new(token));
    cfg.request_timeout = Duration::from_secs(5);
    cfg.retry = HttpRetries::doubling(4, Duration::from_millis(10), Duration::from_millis(200));
    cfg.poll_interval = Duration::from_millis(10);
    cfg.activation_timeout = Duration::from_secs(10);
    cfg.operation_grace = Duration::from_secs(5);
    cfg.confirm_timeout = Duration::from_secs(2);
    cfg
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The contract suite's target. Against a real server, the chart under test is
/// `$RANCHER_TEST_REPO`/`$RANCHER_TEST_CHART` at `$RANCHER_TEST_VERSION` (upgrades from
/// `$RANCHER_TEST_OLD_VERSION`) on cluster `$RANCHER_CLUSTER`; defaults match the simulator seed.
pub async fn harness() -> Harness {
    let real = match (std::env::var("RANCHER_URL"), std::env::var("RANCHER_TOKEN")) {
        (Ok(u), Ok(t)) if !u.is_empty() && !t.is_empty() => Some((u, t)),
        _ => None,
    };
    let (sim, url, token, cluster) = match real {
        Some((url, token)) => {
            eprintln!("contract suite: running against the real Rancher at {url}");
            (None, url, token, env("RANCHER_CLUSTER", "local"))
        }
        None => {
            eprintln!(
                "contract suite: RANCHER_URL/RANCHER_TOKEN not set, running against the in-process simulator \
                 (set both to check the simulator's faithfulness against a real Rancher)"
            );
            let sim = RancherSim::start(SimConfig::default())
                .await
                .expect("simulator starts");
            let url = sim.url();
            let token = sim.admin_token().to_owned();
            (Some(sim), url, token, env("RANCHER_CLUSTER", "berth"))
        }
    };
    let client = RancherClient::new(test_config(&url, &token)).expect("client");
    Harness {
        client,
        sim,
        url,
        token,
        cluster,
        repo: env("RANCHER_TEST_REPO", "stable"),
        chart: env("RANCHER_TEST_CHART", "influxdb"),
        version: env("RANCHER_TEST_VERSION", "4.3.2"),
        old_version: env("RANCHER_TEST_OLD_VERSION", "4.3.1"),
    }
}

/// A simulator-only harness (fault tests).
pub async fn sim_harness() -> (RancherSim, RancherClient) {
    let sim = RancherSim::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let client = RancherClient::new(test_config(&sim.url(), sim.admin_token())).expect("client");
    (sim, client)
}

/// A name unique to this test run, valid as a namespace/project/release name.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}{}",
        nanos % 0xfffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// --- the insight blueprint, rendered from the real templates ---

pub fn templates() -> Templates {
    Templates::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../templates"))
        .expect("templates")
}

pub fn context(namespace: &str, cluster_id: &str, size: &str) -> RenderContext {
    let secrets: Secrets = [
        ("registry_server", "registry.seaview.example"),
        ("registry_username", "robot$trucking"),
        ("registry_password", "eyJhdXRocyI6e319"),
        ("db_username", "trucking"),
        ("db_password", "pa: ss#word"),
        ("oauth_client_id", "berth-trucking"),
        ("oauth_client_secret", "oauth-secret"),
        ("s3_access_key_id", "AKIAEXAMPLE"),
        ("s3_secret_access_key", "s3-secret"),
        ("s3_bucket", "seaview-berth-data"),
        ("s3_prefix", "trucking/"),
    ]
    .into_iter()
    .collect();
    RenderContext {
        unit: UnitInputs::new(
            "SeaView",
            "Trucking",
            "trucking",
            size.parse().expect("a size name"),
        ),
        secrets,
        cluster: ClusterFacts {
            cluster_id: cluster_id.into(),
            namespace: namespace.into(),
            domain: "apps.seaview.example".into(),
        },
    }
}

pub async fn prepare(client: &RancherClient, namespace: &str) -> PreparedTarget {
    prepare_target(
        client,
        &TargetSpec {
            cluster: "berth".into(),
            project: "SeaView Trucking".into(),
            project_description: "Berth unit".into(),
            namespace: namespace.into(),
        },
    )
    .await
    .expect("target prepared")
}

pub fn make_plan(size: &str, target: &PreparedTarget) -> DeployPlan {
    let t = templates();
    let bp = t.blueprint("insight").unwrap();
    let ctx = context(&target.target.namespace, &target.target.cluster_id, size);
    let rendered = t
        .renderer()
        .render_blueprint(bp, &ctx, RenderMode::Real)
        .unwrap();
    DeployPlan::new(bp, &rendered).unwrap()
}
