//! Simulator configuration: timings, fault switches and cluster resources.

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
    /// What every cluster reports as `capacity`, `allocatable` and `requested` at start; change
    /// one cluster's at runtime with [`crate::RancherSim::update_cluster_resources`] or
    /// `PATCH /__sim/clusters/<id>/resources`.
    pub cluster_resources: ClusterResources,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: "token-berth:simulatorsecret".into(),
            clusters: vec![("berth".into(), "c-m-berth001".into())],
            seed_insight: true,
            timings: Timings::fast(),
            legacy_apps: false,
            cluster_resources: ClusterResources::default(),
        }
    }
}

/// Resource name (`cpu`, `memory`, `pods`, …) → Kubernetes quantity, as in a v3 cluster's
/// `capacity`, `allocatable` and `requested` maps. Kept as strings so tests can serve any value
/// Rancher might, including ones a client cannot parse.
pub type ResourceList = BTreeMap<String, String>;

/// The resource maps of one v3 cluster object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterResources {
    /// The nodes' total.
    pub capacity: ResourceList,
    /// What pods may use (capacity minus what the nodes reserve for the system).
    pub allocatable: ResourceList,
    /// The sum of the running pods' requests.
    pub requested: ResourceList,
}

impl ClusterResources {
    /// A cluster with `cpu` and `memory` (Kubernetes quantities, e.g. `"64"` and `"256Gi"`) and
    /// room for 440 pods. The simulator runs no real pods, so nothing is reserved (allocatable =
    /// capacity) and nothing is requested.
    pub fn new(cpu: &str, memory: &str) -> Self {
        let list = |cpu: &str, memory: &str, pods: &str| -> ResourceList {
            [("cpu", cpu), ("memory", memory), ("pods", pods)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        Self {
            capacity: list(cpu, memory, "440"),
            allocatable: list(cpu, memory, "440"),
            requested: list("0", "0", "0"),
        }
    }
}

impl Default for ClusterResources {
    /// 64 CPUs and 256 GiB: a mid-sized production cluster.
    fn default() -> Self {
        Self::new("64", "256Gi")
    }
}

/// Whether `s` has the form of a Kubernetes quantity (`16`, `15500m`, `1.5`, `64Gi`, `129e6`):
/// a non-negative decimal number and at most one suffix. Only the form is checked, for the
/// command line; the client under test does the arithmetic.
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return false;
    }
    const SUFFIXES: [&str; 16] = [
        "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    // A decimal exponent: e/E and a signed integer (`E` alone is exa, above).
    suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
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

    /// These delays `by` times shorter (the garbage-collection time as it is): a rollout still
    /// takes several engine polls, so pages see its steps wait and run, in less time.
    pub fn faster(self, by: u32) -> Self {
        let by = by.max(1);
        Self {
            project_activate: self.project_activate / by,
            namespace_activate: self.namespace_activate / by,
            namespace_forbidden_window: self.namespace_forbidden_window / by,
            operation_wait: self.operation_wait / by,
            operation_run: self.operation_run / by,
            helm_ready: self.helm_ready / by,
            operation_gc_ttl: self.operation_gc_ttl,
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
    /// Release or chart name → Helm error text: an upgrade of that release when it already
    /// exists fails (the install, and rollbacks, are not affected). The operation ends
    /// `Stalled=True` with the text in its log, and the release gets a new `failed` revision.
    pub fail_upgrades: BTreeMap<String, String>,
    /// Release or chart name → Helm error text: a rollback of that release fails (a v2 upgrade
    /// described "Rollback to N", or the legacy v3 `rollback` action), leaving a `failed`
    /// revision.
    pub fail_rollbacks: BTreeMap<String, String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_kubernetes_quantities() {
        for ok in [
            "16",
            "15500m",
            "1.5",
            "64Gi",
            "65536Mi",
            "68719476736",
            "64G",
            "129e6",
            "123Ki",
            "1E3",
            "2e-3",
            "0.5",
            ".5",
            "1.",
            "+4",
            "1E",
            "100n",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in [
            "", "-1", "64GB", "64gi", "1.2.3", ".", "e6", "1e", "1e+", "12 Gi", "1K", "x",
        ] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn default_resources_are_a_64_cpu_256_gib_cluster() {
        let r = ClusterResources::default();
        assert_eq!(r.allocatable["cpu"], "64");
        assert_eq!(r.allocatable["memory"], "256Gi");
        assert_eq!(r.capacity, r.allocatable);
        assert_eq!(r.requested["cpu"], "0");
    }
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
