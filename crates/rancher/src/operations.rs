//! Helm operations (`catalog.cattle.io.operations`): finding one already running for a release,
//! following it to the end, and reading Helm's own error text from its log.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::apps::Target;
use crate::client::RancherClient;
use crate::error::{truncate, RancherError};
use crate::http::Idempotency;
use crate::wire::{encode_component, string_at};

/// The state of a Helm operation (contract §4, "Operation").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    Pending,
    Succeeded,
    Failed { message: String },
}

/// What the client needs to know of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperationInfo {
    pub namespace: String,
    pub name: String,
    pub release: String,
    pub state: OperationState,
    pub logs_link: Option<String>,
}

impl RancherClient {
    fn parse_operation(v: &Value) -> OperationInfo {
        let conds: Vec<&Value> = v["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let cond = |t: &str| {
            conds
                .iter()
                .find(|c| c["type"] == t)
                .map(|c| (string_at(c, &["status"]), string_at(c, &["message"])))
        };
        let state = match (cond("Stalled"), cond("Reconciling")) {
            (Some((s, msg)), _) if s == "True" => OperationState::Failed { message: msg },
            (_, Some((s, _))) if s == "False" => OperationState::Succeeded,
            _ => OperationState::Pending,
        };
        OperationInfo {
            namespace: string_at(v, &["metadata", "namespace"]),
            name: string_at(v, &["metadata", "name"]),
            release: string_at(v, &["status", "releaseName"]),
            state,
            logs_link: v["links"]["logs"].as_str().map(str::to_owned),
        }
    }

    /// An unfinished operation acting on `release`, if any.
    pub(crate) async fn in_flight_operation(
        &self,
        target: &Target,
        release: &str,
    ) -> Result<Option<OperationInfo>, RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.operations/{}",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace)
        );
        let v = self.get(&path).await?;
        Ok(v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Self::parse_operation)
            .find(|op| op.release == release && op.state == OperationState::Pending))
    }

    /// Polls an operation until it finishes. Failure carries Helm's text from the log link.
    pub(crate) async fn wait_operation(
        &self,
        target: &Target,
        name: &str,
        release: &str,
        action: &str,
        deadline: Instant,
        budget: Duration,
    ) -> Result<(), RancherError> {
        let path = format!(
            "{}/catalog.cattle.io.operations/{}/{}",
            Self::steve_base(&target.cluster_id),
            encode_component(&target.namespace),
            encode_component(name)
        );
        loop {
            // Garbage-collected (or pod gone): only the App can tell; the caller checks it.
            let Some(v) = self.get_opt(&path).await? else {
                return Ok(());
            };
            let op = Self::parse_operation(&v);
            match op.state.clone() {
                OperationState::Succeeded => return Ok(()),
                OperationState::Failed { message } => {
                    let logs = self.operation_logs(&op, &path).await;
                    let message = helm_error_text(&logs).unwrap_or(message);
                    return Err(RancherError::OperationFailed {
                        release: release.into(),
                        action: action.into(),
                        operation: format!("{}/{}", op.namespace, op.name),
                        message,
                    });
                }
                OperationState::Pending => {}
            }
            if Instant::now() >= deadline {
                return Err(RancherError::Deadline {
                    what: format!(
                        "helm operation {name} ({action} {release}) to finish; its pod may be stuck Pending"
                    ),
                    waited: budget,
                });
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    async fn operation_logs(&self, op: &OperationInfo, self_path: &str) -> String {
        let path = match &op.logs_link {
            Some(link) => link
                .strip_prefix(&self.http.base)
                .unwrap_or(link)
                .to_owned(),
            None => format!("{self_path}?link=logs"),
        };
        match self
            .http
            .send(Method::GET, &path, None, Idempotency::Safe)
            .await
        {
            Ok(a) => a.text(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the operation's logs");
                String::new()
            }
        }
    }
}

/// Picks Helm's error lines out of an operation log (`Error: …`), falling back to the tail.
fn helm_error_text(logs: &str) -> Option<String> {
    let lines: Vec<&str> = logs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("Error"))
        .collect();
    let text = if errors.is_empty() {
        lines[lines.len().saturating_sub(3)..].join("\n")
    } else {
        errors.join("\n")
    };
    Some(truncate(&text, 2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_error_lines_are_extracted() {
        let logs = "helm install --namespace=x influxdb /home/shell/helm/influxdb-4.3.2.tgz\n\
                    Error: INSTALLATION FAILED: execution error at (influxdb/templates/x.yaml:3:4): boom\n";
        assert_eq!(
            helm_error_text(logs).unwrap(),
            "Error: INSTALLATION FAILED: execution error at (influxdb/templates/x.yaml:3:4): boom"
        );
        assert_eq!(helm_error_text("a\nb\nc\nd").unwrap(), "b\nc\nd");
        assert_eq!(helm_error_text("  \n"), None);
    }
}
