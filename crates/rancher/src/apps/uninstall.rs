//! Uninstalling a release, following an uninstall (or any action) already under way.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::time::Instant;

use super::{HelmStatus, Target};
use crate::client::RancherClient;
use crate::error::RancherError;
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

/// What [`RancherClient::uninstall`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    Removed,
    NotInstalled,
}

impl RancherClient {
    /// Uninstalls a release and waits until its App is gone. `NotInstalled` when there is none.
    #[tracing::instrument(skip_all, fields(cluster_id = %target.cluster_id, namespace = %target.namespace, release = %release))]
    pub async fn uninstall(
        &self,
        target: &Target,
        release: &str,
        timeout: Duration,
    ) -> Result<UninstallOutcome, RancherError> {
        let Some(app) = self.get_app(target, release).await? else {
            return Ok(UninstallOutcome::NotInstalled);
        };
        let budget = timeout + self.cfg.operation_grace;
        let deadline = Instant::now() + budget;
        // An uninstall already under way (a worker killed after sending it) is followed, not
        // sent again; so is any other action still running for the release.
        let running = self.in_flight_operation(target, release).await?;
        if app.status == HelmStatus::Uninstalling || running.is_some() {
            if let Some(op) = running {
                tracing::info!(operation = %op.name, "following an operation already running for the release");
                self.wait_operation(target, &op.name, release, "uninstall", deadline, budget)
                    .await?;
            }
            if app.status == HelmStatus::Uninstalling {
                return self
                    .until_uninstalled(target, release, deadline, budget)
                    .await;
            }
            if self.get_app(target, release).await?.is_none() {
                return Ok(UninstallOutcome::Removed);
            }
        }
        let path = format!(
            "{}/catalog.cattle.io.apps/{}/{}?action=uninstall",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace),
            encode_component(release)
        );
        let body = json!({"timeout": berth_blueprint::format_go_duration(timeout)});
        let answer = match self
            .http
            .send(Method::POST, &path, Some(&body), Idempotency::Unsafe)
            .await
        {
            Ok(a) => Some(a),
            Err(e) if e.is_not_found() => return Ok(UninstallOutcome::NotInstalled),
            Err(e @ RancherError::Timeout { .. }) => {
                tracing::warn!(error = %e, "uninstall outcome unknown; watching the release");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(a) = answer {
            let out = a.json(&path)?;
            let op = string_at(&out, &["operationName"]);
            self.wait_operation(target, &op, release, "uninstall", deadline, budget)
                .await?;
        }
        self.until_uninstalled(target, release, deadline, budget)
            .await
    }

    /// Waits until the release's App is gone (or reads `uninstalled`).
    async fn until_uninstalled(
        &self,
        target: &Target,
        release: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<UninstallOutcome, RancherError> {
        loop {
            match self.get_app(target, release).await? {
                None => return Ok(UninstallOutcome::Removed),
                Some(a) if a.status == HelmStatus::Uninstalled => {
                    return Ok(UninstallOutcome::Removed)
                }
                Some(a) if Instant::now() >= deadline => {
                    return Err(RancherError::Deadline {
                        what: format!("release {release} to be uninstalled (now {})", a.status),
                        waited: budget,
                    })
                }
                Some(_) => tokio::time::sleep(self.cfg.poll_interval).await,
            }
        }
    }
}
