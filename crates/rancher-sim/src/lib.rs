//! A Rancher API simulator for Berth's dev stack and tests (never linked into the product).
//!
//! It reproduces `../shared/docs/rancher-contract.md`: Norman `/v3` (users, clusters, projects,
//! namespaces), Steve `/v1` and `/k8s/clusters/<id>/v1` (cluster repos, apps, operations), the
//! four error-body shapes, asynchronous readiness, and a Helm release model. Faults are switched
//! per test through [`RancherSim::set_faults`] or the control API under `/__sim/`; call counters
//! let tests prove idempotency.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = berth_rancher_sim::RancherSim::start(Default::default()).await?;
//! let (url, token) = (sim.url(), sim.admin_token().to_owned());
//! # let _ = (url, token);
//! # Ok(()) }
//! ```

mod config;
mod http;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{is_quantity, ClusterResources, Faults, ResourceList, SimConfig, Timings};
pub use http::{router, StoredSecret};
pub use world::{Action, HelmRecord, RevisionInfo, Shared};

/// A running simulator. Dropping it stops the server.
pub struct RancherSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RancherSim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn bind(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(&config);
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "rancher simulator stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin API key configured at start.
    pub fn admin_token(&self) -> &str {
        self.shared.admin_token()
    }

    pub fn faults(&self) -> Faults {
        self.shared.world().faults.clone()
    }

    /// Replaces every fault switch.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.world().faults = faults;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.world().faults);
    }

    pub fn set_timings(&self, timings: Timings) {
        self.shared.world().config_timings = timings;
    }

    /// The `capacity`, `allocatable` and `requested` maps of a cluster, `None` for an unknown id.
    pub fn cluster_resources(&self, cluster_id: &str) -> Option<ClusterResources> {
        self.shared
            .world()
            .cluster(cluster_id)
            .map(|c| c.resources.clone())
    }

    /// Changes what a cluster reports, e.g.
    /// `sim.update_cluster_resources("c-m-berth001", |r| r.allocatable = ClusterResources::new("8", "32Gi").allocatable)`.
    /// Returns `false` (and changes nothing) when there is no cluster with that id.
    pub fn update_cluster_resources(
        &self,
        cluster_id: &str,
        f: impl FnOnce(&mut ClusterResources),
    ) -> bool {
        match self.shared.world().cluster_mut(cluster_id) {
            Some(c) => {
                f(&mut c.resources);
                true
            }
            None => false,
        }
    }

    /// Requests received, by `"METHOD kind[ action=x][ link=y]"`, e.g.
    /// `"POST clusterrepo action=install"`, `"GET app"`, `"POST project"`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.world().counters.clone()
    }

    pub fn count(&self, key: &str) -> u64 {
        self.shared.world().counters.get(key).copied().unwrap_or(0)
    }

    pub fn reset_counters(&self) {
        self.shared.world().counters.clear();
    }

    /// Every Helm action that actually ran, in order.
    pub fn helm_history(&self) -> Vec<HelmRecord> {
        self.shared.world().history.clone()
    }

    /// The Secrets written into namespace `ns` through the Kubernetes proxy, values decoded.
    pub fn secrets(&self, ns: &str) -> Vec<StoredSecret> {
        http::stored_secrets(&self.shared, ns)
    }

    /// Everything the simulator keeps of releases and apps as one JSON document (Helm
    /// revisions with their values, operations' requests and logs, legacy apps' answers and
    /// `valuesYaml`, the Helm action log): what a test searches for leaked secret values.
    pub fn stored_app_data(&self) -> serde_json::Value {
        let mut world = self.shared.world();
        world.advance(std::time::Instant::now());
        world.stored_app_data()
    }

    /// The Helm revisions of a release (v2, or the release under a legacy app) in namespace
    /// `ns`, oldest first, as of now; `None` when there is no such release.
    pub fn release_history(&self, ns: &str, release: &str) -> Option<Vec<RevisionInfo>> {
        let mut world = self.shared.world();
        world.advance(std::time::Instant::now());
        world.release_history(ns, release)
    }

    /// Issues another API key, optionally expiring after `ttl` and scoped to one cluster.
    pub fn create_token(&self, ttl: Option<Duration>, cluster: Option<&str>) -> String {
        self.shared.world().issue_token(ttl, cluster)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RancherSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves until `shutdown` resolves (for the `rancher-sim` binary).
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(Shared::new(&config)))
        .with_graceful_shutdown(shutdown)
        .await
}
