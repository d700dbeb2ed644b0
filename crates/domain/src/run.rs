//! Where a provisioning run and its steps stand. Shared with the browser (the provisioning panel
//! shows them); the runs crate stores them, and the database checks the same values.

use serde::{Deserialize, Serialize};

/// The state of a run: `pending` → `running` → `succeeded` | `failed` | `cancelled`; an
/// operator's retry moves `failed`/`cancelled` back to `pending`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RunStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Not finished yet: a worker may still pick it up or is working on it (at most one such
    /// run per environment).
    pub fn is_live(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }

    /// An operator may retry it.
    pub fn is_retryable(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::Cancelled)
    }
}

/// The state of a step.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StepStatus {
    /// Ready to be claimed (possibly after a backoff: `run_after`).
    Pending,
    /// Claimed by a worker holding a lease.
    Running,
    Succeeded,
    /// Failed for good (permanent error or attempts exhausted).
    Failed,
    /// Waiting for the steps it depends on (`blocked_reason` says which).
    Blocked,
    /// Not run because the run failed.
    Skipped,
    /// Stopped by an operator.
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Not started yet: waiting for its dependencies or to be claimed.
    pub fn is_waiting(self) -> bool {
        matches!(self, StepStatus::Pending | StepStatus::Blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn stored_names_are_the_schemas() {
        let runs: Vec<&str> = RunStatus::iter().map(RunStatus::as_str).collect();
        assert_eq!(
            runs,
            ["pending", "running", "succeeded", "failed", "cancelled"]
        );
        let steps: Vec<String> = StepStatus::iter().map(|s| s.to_string()).collect();
        assert_eq!(
            steps,
            [
                "pending",
                "running",
                "succeeded",
                "failed",
                "blocked",
                "skipped",
                "cancelled"
            ]
        );
        assert_eq!(
            serde_json::to_string(&StepStatus::Blocked).unwrap(),
            "\"blocked\""
        );
    }
}
