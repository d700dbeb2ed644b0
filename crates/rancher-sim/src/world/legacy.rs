//! Legacy v3 apps (catalog v1, contract §5): only kept when the simulator serves the legacy API.

use std::time::Instant;

use serde_json::{Map, Value};

/// One revision of a legacy app: what an upgrade or rollback sets.
#[derive(Debug, Clone)]
pub struct LegacyRevision {
    pub id: String,
    pub external_id: String,
    pub answers: Map<String, Value>,
    pub values_yaml: String,
}

#[derive(Debug, Clone)]
pub struct LegacyApp {
    pub project_id: String,
    pub name: String,
    pub target_namespace: String,
    pub current: LegacyRevision,
    pub history: Vec<LegacyRevision>,
    /// When the current install/upgrade started.
    pub started: Instant,
    pub fail_message: Option<String>,
    pub born_active: bool,
    pub removing_since: Option<Instant>,
}
