//! Cluster repos (Apps & Marketplace catalog): readiness of the index and the chart versions
//! it offers.

use tokio::time::Instant;

use crate::client::RancherClient;
use crate::error::RancherError;
use crate::wire::{encode_component, string_at};

impl RancherClient {
    /// Waits until the cluster repo has downloaded its index (`Downloaded`/`OCIDownloaded`).
    #[tracing::instrument(skip_all, fields(cluster_id = %cluster_id, repo = %repo))]
    pub async fn wait_repo_ready(&self, cluster_id: &str, repo: &str) -> Result<(), RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.clusterrepos/{}",
            Self::steve_base(cluster_id),
            encode_component(repo)
        );
        let deadline = Instant::now() + self.cfg.activation_timeout;
        loop {
            let v = self.get(&path).await?;
            let cond = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| matches!(c["type"].as_str(), Some("Downloaded" | "OCIDownloaded")));
            match cond.map(|c| (string_at(c, &["status"]), string_at(c, &["message"]))) {
                Some((s, _)) if s == "True" => return Ok(()),
                Some((s, message)) if s == "False" => {
                    return Err(RancherError::RepoNotReady {
                        repo: repo.into(),
                        message,
                    })
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::RepoNotReady {
                    repo: repo.into(),
                    message: format!(
                        "index not downloaded after {:?}",
                        self.cfg.activation_timeout
                    ),
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// Versions of a chart in a cluster repo, newest first (including versions the
    /// Rancher/Kubernetes filter would hide).
    pub async fn chart_versions(
        &self,
        cluster_id: &str,
        repo: &str,
        chart: &str,
    ) -> Result<Vec<String>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.clusterrepos/{}?link=index&skipFilter=true",
            Self::steve_base(cluster_id),
            encode_component(repo)
        );
        let v = self.get(&path).await?;
        Ok(v["entries"][chart]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["version"].as_str().map(str::to_owned))
            .collect())
    }
}
