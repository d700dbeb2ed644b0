//! Legacy v3 apps (catalog v1, contract §5): only kept when the simulator serves the legacy API.
//!
//! Rancher keeps two histories for a legacy app: its `apprevisions` (one per successful
//! install/upgrade/rollback, what the `rollback` action takes as `revisionId`), and the Helm
//! release underneath (numbered revisions with statuses), which the control API shows.

use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use super::helm::RevisionInfo;
use crate::config::Timings;

/// One revision of a legacy app: what an upgrade or rollback sets.
#[derive(Debug, Clone)]
pub struct LegacyRevision {
    /// The apprevision's name, `apprevision-xxxxx` (its Norman id is `p-yyyyy:<name>`).
    pub id: String,
    pub external_id: String,
    pub answers: Map<String, Value>,
    pub values_yaml: String,
    pub created_wall: SystemTime,
    /// `createdTS` (ms since the epoch), strictly increasing per app so order is exact.
    pub created_ms: u64,
    /// The Helm revision this apprevision was deployed as.
    pub helm_revision: u32,
}

/// One Helm revision under a legacy app.
#[derive(Debug, Clone)]
pub struct LegacyHelmRevision {
    pub number: u32,
    pub chart: String,
    pub version: String,
    pub values_yaml: String,
    /// `Install complete`, `Upgrade complete`, `Rollback to N` once done.
    pub description: String,
    pub kind: &'static str,
    pub fail_message: Option<String>,
    pub started: Instant,
}

#[derive(Debug, Clone)]
pub struct LegacyApp {
    pub project_id: String,
    pub name: String,
    pub target_namespace: String,
    pub current: LegacyRevision,
    /// The apprevisions, oldest first (only successful actions create one).
    pub history: Vec<LegacyRevision>,
    /// The Helm revisions underneath, oldest first.
    pub helm: Vec<LegacyHelmRevision>,
    /// When the current install/upgrade started.
    pub started: Instant,
    pub fail_message: Option<String>,
    pub born_active: bool,
    pub removing_since: Option<Instant>,
}

impl LegacyApp {
    /// The apprevision currently applied (`appRevisionId`): the newest one.
    pub fn applied_revision(&self) -> Option<&LegacyRevision> {
        self.history.last()
    }

    /// The next `createdTS` for a new apprevision.
    pub fn next_created_ms(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        now.max(self.history.last().map_or(0, |r| r.created_ms + 1))
    }

    /// The Helm history as `helm history` would print it at `now`.
    pub fn helm_history(&self, now: Instant, t: &Timings) -> Vec<RevisionInfo> {
        let done = |r: &LegacyHelmRevision| now >= r.started + t.operation_wait + t.operation_run;
        let deployed = self
            .helm
            .iter()
            .rposition(|r| r.fail_message.is_none() && done(r));
        self.helm
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = if !done(r) {
                    format!("pending-{}", r.kind)
                } else if r.fail_message.is_some() {
                    "failed".into()
                } else if Some(i) == deployed {
                    "deployed".into()
                } else {
                    "superseded".into()
                };
                let description = match (&r.fail_message, done(r)) {
                    (_, false) => String::new(),
                    (Some(msg), true) => format!(
                        "{} {:?} failed: {msg}",
                        match r.kind {
                            "install" => "Release",
                            "rollback" => "Rollback",
                            _ => "Upgrade",
                        },
                        self.name
                    ),
                    (None, true) => r.description.clone(),
                };
                RevisionInfo {
                    revision: r.number,
                    chart: r.chart.clone(),
                    version: r.version.clone(),
                    app_version: String::new(),
                    values: if r.values_yaml.trim().is_empty() {
                        Value::Object(Map::new())
                    } else {
                        serde_json::from_str(&r.values_yaml)
                            .unwrap_or_else(|_| Value::String(r.values_yaml.clone()))
                    },
                    status,
                    description,
                }
            })
            .collect()
    }
}
