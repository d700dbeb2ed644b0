//! What the stack should look like, and the readable plan of how CloudFormation gets it there.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::{ChangeSetKind, ParameterValue, ResourceChange, StackSnapshot};
use crate::unit::Tag;

/// What the stack should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStack {
    pub stack_name: String,
    pub template_body: String,
    pub parameters: Vec<(String, ParameterValue)>,
    pub tags: Vec<Tag>,
    /// The id Berth recorded when it created the stack. When set and the stack is gone,
    /// [`StackDriver::plan`](super::StackDriver::plan) reports [`AwsError::StackVanished`] instead of recreating it.
    pub known_stack_id: Option<String>,
}

/// One line of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Add,
    Modify,
    /// Modified by replacing the resource (new physical id; a secret gets a new ARN).
    Replace,
    /// Modified; replacement depends on values known only during the update.
    MaybeReplace,
    Remove,
    Other,
}

/// One resource change of a plan, as approvers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub action: ChangeAction,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
}

impl From<&ResourceChange> for PlannedChange {
    fn from(change: &ResourceChange) -> Self {
        let action = match (change.action.as_str(), change.replacement.as_deref()) {
            ("Add", _) => ChangeAction::Add,
            ("Remove", _) => ChangeAction::Remove,
            ("Modify", Some("True")) => ChangeAction::Replace,
            ("Modify", Some("Conditional")) => ChangeAction::MaybeReplace,
            ("Modify", _) => ChangeAction::Modify,
            _ => ChangeAction::Other,
        };
        Self {
            action,
            logical_id: change.logical_id.clone(),
            resource_type: change.resource_type.clone(),
            physical_id: change.physical_id.clone(),
        }
    }
}

/// A readable plan backed by a change set (none when there is nothing to do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPlan {
    pub stack_name: String,
    pub stack_id: String,
    pub kind: ChangeSetKind,
    /// `None` when the stack already matches: nothing to execute.
    pub change_set_id: Option<String>,
    pub changes: Vec<PlannedChange>,
}

impl StackPlan {
    pub fn is_noop(&self) -> bool {
        self.change_set_id.is_none()
    }

    pub fn count(&self, action: ChangeAction) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// One line such as "update: 1 to modify, 1 to replace".
    pub fn summary(&self) -> String {
        if self.is_noop() {
            return "no changes".into();
        }
        let verb = match self.kind {
            ChangeSetKind::Create => "create",
            ChangeSetKind::Update => "update",
        };
        let parts: Vec<String> = [
            (ChangeAction::Add, "to add"),
            (ChangeAction::Modify, "to modify"),
            (ChangeAction::Replace, "to replace"),
            (ChangeAction::MaybeReplace, "to modify, maybe replace"),
            (ChangeAction::Remove, "to remove"),
            (ChangeAction::Other, "other"),
        ]
        .iter()
        .filter_map(|(action, label)| {
            let n = self.count(*action);
            (n > 0).then(|| format!("{n} {label}"))
        })
        .collect();
        if parts.is_empty() {
            format!("{verb}: parameters only")
        } else {
            format!("{verb}: {}", parts.join(", "))
        }
    }
}

impl fmt::Display for StackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack {}: {}", self.stack_name, self.summary())?;
        for change in &self.changes {
            let (sign, note) = match change.action {
                ChangeAction::Add => ('+', ""),
                ChangeAction::Modify => ('~', ""),
                ChangeAction::Replace => ('±', " (replaced)"),
                ChangeAction::MaybeReplace => ('~', " (may be replaced)"),
                ChangeAction::Remove => ('-', ""),
                ChangeAction::Other => ('?', ""),
            };
            write!(
                f,
                "\n  {sign} {} {}{note}",
                change.logical_id, change.resource_type
            )?;
        }
        Ok(())
    }
}

/// The result of [`StackDriver::ensure`](super::StackDriver::ensure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureOutcome {
    Created {
        stack: StackSnapshot,
        plan: StackPlan,
    },
    Updated {
        stack: StackSnapshot,
        plan: StackPlan,
    },
    Unchanged {
        stack: StackSnapshot,
    },
}

impl EnsureOutcome {
    pub fn stack(&self) -> &StackSnapshot {
        match self {
            EnsureOutcome::Created { stack, .. }
            | EnsureOutcome::Updated { stack, .. }
            | EnsureOutcome::Unchanged { stack } => stack,
        }
    }
}
