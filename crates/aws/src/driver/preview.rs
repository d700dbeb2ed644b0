//! The preview approvers read: what building would do to a stack, kept after the change set
//! it was read from is gone.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::plan::{summarize, write_changes, DesiredStack, PlannedChange, StackPlan};
use crate::api::{ChangeSetKind, ParameterValue};

/// What a secret parameter shows instead of its value.
pub const REDACTED: &str = "[redacted]";

/// Whether building creates the stack, updates it, or leaves it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewKind {
    Create,
    Update,
    NoChanges,
}

/// One template parameter as approvers see it; secret values are [`REDACTED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewParameter {
    pub key: String,
    pub value: String,
}

/// What building a unit's stack would do, from a change set that was deleted right after it
/// was read. Safe to store and show: no secret values, and no id of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPreview {
    pub stack_name: String,
    pub kind: PreviewKind,
    pub changes: Vec<PlannedChange>,
    /// In the order they are passed to CloudFormation.
    pub parameters: Vec<PreviewParameter>,
    /// SHA-256 (hex) of the template body previewed.
    pub template_sha256: String,
    /// [`DesiredStack::fingerprint`] of the inputs previewed: the build compares it with its
    /// own inputs to know the approval still holds.
    pub fingerprint: String,
}

impl StackPreview {
    pub(crate) fn new(desired: &DesiredStack, plan: &StackPlan) -> Self {
        let kind = match (plan.is_noop(), plan.kind) {
            (true, _) => PreviewKind::NoChanges,
            (false, ChangeSetKind::Create) => PreviewKind::Create,
            (false, ChangeSetKind::Update) => PreviewKind::Update,
        };
        let parameters = desired
            .parameters
            .iter()
            .map(|(key, value)| PreviewParameter {
                key: key.clone(),
                value: match value {
                    ParameterValue::Plain(v) | ParameterValue::SecretVersion(v) => v.clone(),
                    ParameterValue::Secret(_) => REDACTED.into(),
                },
            })
            .collect();
        Self {
            // The stack as it is named (a stack from an earlier naming scheme keeps its name).
            stack_name: plan.stack_name.clone(),
            kind,
            changes: plan.changes.clone(),
            parameters,
            template_sha256: desired.template_sha256(),
            fingerprint: desired.fingerprint(),
        }
    }

    /// One line such as "create: 7 to add" or "no changes".
    pub fn summary(&self) -> String {
        match self.kind {
            PreviewKind::NoChanges => "no changes".into(),
            PreviewKind::Create => summarize("create", &self.changes),
            PreviewKind::Update => summarize("update", &self.changes),
        }
    }
}

impl fmt::Display for StackPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack {}: {}", self.stack_name, self.summary())?;
        write_changes(f, &self.changes)
    }
}
