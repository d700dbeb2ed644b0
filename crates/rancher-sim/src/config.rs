//! Simulator configuration: timings and fault switches.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The admin API key accepted from the start (opaque, `token-xxxxx:secret` shaped).
    pub token: String,
    /// Downstream clusters besides `local`, as (name, id).
    pub clusters: Vec<(String, String)>,
    /// Load the `insight` charts into a `stable` cluster repo on every cluster.
    pub seed_insight: bool,
    pub timings: Timings,
    /// Serve the legacy v3 apps API (`/v3/projects/<id>/apps`, `/v3/templates`), as a Rancher
    /// 2.5–2.10 with the `legacy` feature flag on. Its catalogs mirror the cluster repos.
    pub legacy_apps: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: "token-berth:simulatorsecret".into(),
            clusters: vec![("berth".into(), "c-m-berth001".into())],
            seed_insight: true,
            timings: Timings::fast(),
            legacy_apps: false,
        }
    }
}

/// Delays of the asynchronous transitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timings {
    /// Project `initializing` → `active` (and `removing` → gone).
    #[serde(with = "millis")]
    pub project_activate: Duration,
    /// Namespace `activating` → `active`.
    #[serde(with = "millis")]
    pub namespace_activate: Duration,
    /// Window after a namespace is created during which reading it answers 403 (RBAC lag).
    #[serde(with = "millis")]
    pub namespace_forbidden_window: Duration,
    /// Operation pod waiting before Helm runs.
    #[serde(with = "millis")]
    pub operation_wait: Duration,
    /// Helm run time.
    #[serde(with = "millis")]
    pub operation_run: Duration,
    /// Extra time until workloads are ready, when the install asked for `wait:true`.
    #[serde(with = "millis")]
    pub helm_ready: Duration,
    /// Finished operations are garbage-collected after this (about 1 h on Rancher).
    #[serde(with = "millis")]
    pub operation_gc_ttl: Duration,
}

impl Timings {
    /// Small delays for tests: every transition is still asynchronous.
    pub fn fast() -> Self {
        Self {
            project_activate: Duration::from_millis(20),
            namespace_activate: Duration::from_millis(20),
            namespace_forbidden_window: Duration::ZERO,
            operation_wait: Duration::from_millis(10),
            operation_run: Duration::from_millis(20),
            helm_ready: Duration::from_millis(20),
            operation_gc_ttl: Duration::from_secs(3600),
        }
    }

    /// Delays close to a real server, for the local dev stack (a visible, seconds-long rollout).
    pub fn realistic() -> Self {
        Self {
            project_activate: Duration::from_millis(1500),
            namespace_activate: Duration::from_millis(1000),
            namespace_forbidden_window: Duration::from_millis(300),
            operation_wait: Duration::from_millis(1000),
            operation_run: Duration::from_millis(2500),
            helm_ready: Duration::from_millis(3000),
            operation_gc_ttl: Duration::from_secs(3600),
        }
    }
}

impl Default for Timings {
    fn default() -> Self {
        Self::fast()
    }
}

/// Fault switches, settable per test through [`crate::RancherSim::set_faults`] or
/// `PUT /__sim/faults`. Counted faults (`server_errors`, `rate_limited`, `hang`) apply to the next
/// N API requests whose `"METHOD /path?query"` contains `target` (all when `target` is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Only requests whose `"METHOD /path?query"` contains this are hit by counted faults.
    pub target: String,
    /// The next N matching requests answer 503 (`ClusterUnavailable`-style server error).
    pub server_errors: u32,
    /// The next N matching requests answer 429 with `Retry-After: retry_after_secs`.
    pub rate_limited: u32,
    pub retry_after_secs: u64,
    /// The next N matching requests wait `hang_ms` and then answer 504 without doing anything
    /// (a client with a shorter timeout sees a hang).
    pub hang: u32,
    pub hang_ms: u64,
    /// Every `/k8s/clusters/...` request answers 500 plain text (agent tunnel down).
    pub tunnel_down: bool,
    /// Every token is treated as expired.
    pub tokens_expired: bool,
    /// Extra Helm run time for installs/upgrades (slow installs).
    pub install_extra_delay_ms: u64,
    /// Every Rancher API request (not the `/__sim` control API) waits this long before it is
    /// served: network and API-server latency, so benchmarks see realistic per-call costs.
    pub request_latency_ms: u64,
    /// Chart name → Helm error text: installs/upgrades of that chart fail in the operation.
    pub fail_charts: BTreeMap<String, String>,
    /// Operation pods never leave `Pending`.
    pub pod_stuck_pending: bool,
    /// The operation pod vanishes: the operation reads as success but Helm wrote nothing.
    pub pod_vanishes: bool,
    /// The release is left `pending-install`/`pending-upgrade` while the operation reads success.
    pub stuck_pending_install: bool,
    /// Cluster repos report `Downloaded=False` with this message.
    pub repo_download_failed: Option<String>,
    /// An install sent with `projectId` fails with "failed to wait for roles to be populated".
    pub roles_never_populate: bool,
    /// Installs/upgrades sent with `wait:true` fail when Helm's wait runs out ("context deadline
    /// exceeded"): workloads that never become ready.
    pub readiness_timeout: bool,
    /// Legacy v3 apps read `active` (with no conditions) right after creation, before any
    /// work started (terraform-provider-rancher2#436).
    pub legacy_born_active: bool,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
