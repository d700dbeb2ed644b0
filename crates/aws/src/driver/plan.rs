//! What the stack should look like, and the readable plan of how CloudFormation gets it there.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{ChangeSetKind, ParameterValue, ResourceChange, StackSnapshot};
use crate::unit::Tag;

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

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
    /// Names the stack may have from an earlier naming scheme (`berth-<company>-<unit>`), tried
    /// when no id is known and nothing is named `stack_name`; a stack under one of them is
    /// taken only when its `berth:company`/`berth:unit` tags are the desired ones. Not part of
    /// the fingerprint.
    pub former_names: Vec<String>,
}

/// Names the layout hashed by [`DesiredStack::fingerprint`]; bump it when the layout changes,
/// so that an old fingerprint can never match a new one by accident.
const FINGERPRINT_FORMAT: &str = "berth-desired-stack/v1";

impl DesiredStack {
    /// A stable SHA-256 (hex) of what this stack should be, computed without any AWS call, so
    /// that an approved plan can be checked against the inputs of the build it approved.
    ///
    /// Covers the stack name, template body, parameters (in order) and tags (sorted: their
    /// order means nothing to CloudFormation), not the recorded stack id. Secret parameter
    /// values are replaced by `null`: the fingerprint is stored and shown, and a hash of a
    /// low-entropy password could be guessed back. Changing only a secret therefore keeps the
    /// fingerprint, as approvers never see secrets anyway. So do version ids of secrets the
    /// template reads itself ([`ParameterValue::SecretVersion`], also `null`): a rotated
    /// registry password is a new version, and it must not void an approval either.
    pub fn fingerprint(&self) -> String {
        let parameters: Vec<serde_json::Value> = self
            .parameters
            .iter()
            .map(|(key, value)| match value {
                ParameterValue::Plain(v) => serde_json::json!([key, v]),
                ParameterValue::Secret(_) | ParameterValue::SecretVersion(_) => {
                    serde_json::json!([key, null])
                }
            })
            .collect();
        let mut tags: Vec<&Tag> = self.tags.iter().collect();
        tags.sort();
        let tags: Vec<[&str; 2]> = tags.iter().map(|t| [&*t.key, &*t.value]).collect();
        // Arrays only: JSON objects could change key order with serde_json's features.
        let canonical = serde_json::json!([
            FINGERPRINT_FORMAT,
            self.stack_name,
            self.template_body,
            parameters,
            tags
        ]);
        sha256_hex(canonical.to_string().as_bytes())
    }

    /// SHA-256 (hex) of the template body, to tell which template a plan was made from.
    pub fn template_sha256(&self) -> String {
        sha256_hex(self.template_body.as_bytes())
    }
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
    /// CloudFormation's `Replacement` for a modification (`True`, `False`, `Conditional`), as
    /// it wrote it; `None` for additions and removals. Absent in plans stored before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
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
            replacement: change.replacement.clone(),
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
        summarize(verb, &self.changes)
    }
}

/// "<verb>: 1 to add, 2 to modify" over `changes`.
pub(crate) fn summarize(verb: &str, changes: &[PlannedChange]) -> String {
    let count = |action| changes.iter().filter(|c| c.action == action).count();
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
        let n = count(*action);
        (n > 0).then(|| format!("{n} {label}"))
    })
    .collect();
    if parts.is_empty() {
        format!("{verb}: parameters only")
    } else {
        format!("{verb}: {}", parts.join(", "))
    }
}

/// One indented line per change, diff style.
pub(crate) fn write_changes(f: &mut fmt::Formatter<'_>, changes: &[PlannedChange]) -> fmt::Result {
    for change in changes {
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

impl fmt::Display for StackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack {}: {}", self.stack_name, self.summary())?;
        write_changes(f, &self.changes)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> DesiredStack {
        DesiredStack {
            stack_name: "berth-seaview-trucking".into(),
            template_body: "Resources: {}\n".into(),
            parameters: vec![
                (
                    "RegistryServer".into(),
                    ParameterValue::Plain("registry.example.com".into()),
                ),
                (
                    "RegistryPasswordJson".into(),
                    ParameterValue::Secret("hunter2".to_owned().into()),
                ),
            ],
            tags: vec![
                Tag {
                    key: "SeaView".into(),
                    value: "Trucking".into(),
                },
                Tag {
                    key: "berth:managed-by".into(),
                    value: "berth".into(),
                },
            ],
            known_stack_id: None,
            former_names: Vec::new(),
        }
    }

    #[test]
    fn same_inputs_give_the_same_fingerprint() {
        let fingerprint = desired().fingerprint();
        assert_eq!(fingerprint, desired().fingerprint());
        assert_eq!(fingerprint.len(), 64);
        assert!(fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // Where the stack is, not what it should be.
        let known = DesiredStack {
            known_stack_id: Some("arn:aws:cloudformation:eu-central-1:1:stack/x/y".into()),
            ..desired()
        };
        assert_eq!(known.fingerprint(), fingerprint);
        let former = DesiredStack {
            former_names: vec!["berth-seaview-trucking-old".into()],
            ..desired()
        };
        assert_eq!(former.fingerprint(), fingerprint);
        // Tag order means nothing to CloudFormation.
        let mut reordered = desired();
        reordered.tags.reverse();
        assert_eq!(reordered.fingerprint(), fingerprint);
    }

    /// Pinned: fingerprints are stored with approvals, so a silent change of the layout
    /// would make every stored approval stale (bump FINGERPRINT_FORMAT instead). The value is
    /// the SHA-256 of the compact JSON
    /// `["berth-desired-stack/v1","berth-seaview-trucking","Resources: {}\n",
    /// [["RegistryServer","registry.example.com"],["RegistryPasswordJson",null]],
    /// [["SeaView","Trucking"],["berth:managed-by","berth"]]]`, computed outside Rust.
    #[test]
    fn the_fingerprint_layout_is_pinned() {
        assert_eq!(
            desired().fingerprint(),
            "12ed19dd382c4a34bafb1d9fae6c506e8a05c5838cf066714b8f84062c52bd37"
        );
    }

    #[test]
    fn every_reviewed_input_changes_the_fingerprint() {
        let mut variants = vec![desired()];
        let mut add = |change: fn(&mut DesiredStack)| {
            let mut d = desired();
            change(&mut d);
            variants.push(d);
        };
        add(|d| d.stack_name = "berth-seaview-trucking-2".into());
        add(|d| d.template_body.push_str("# comment\n"));
        add(|d| d.parameters[0].1 = ParameterValue::Plain("registry2.example.com".into()));
        add(|d| d.parameters[0].0 = "RegistryHost".into());
        add(|d| d.parameters.reverse());
        add(|d| {
            d.parameters
                .push(("KmsKeyId".into(), ParameterValue::Plain(String::new())))
        });
        // A plain value where a secret was is a different input, whatever the value.
        add(|d| d.parameters[1].1 = ParameterValue::Plain(String::new()));
        add(|d| d.parameters[1].1 = ParameterValue::Plain("null".into()));
        add(|d| d.tags[0].value = "Logistics".into());
        add(|d| d.tags[0].key = "SeaView:unit".into());
        add(|d| d.tags.pop().map(drop).unwrap_or_default());
        let mut seen: Vec<String> = variants.iter().map(DesiredStack::fingerprint).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            variants.len(),
            "two variants share a fingerprint"
        );
    }

    #[test]
    fn secret_values_do_not_reach_the_fingerprint() {
        let mut rotated = desired();
        rotated.parameters[1].1 = ParameterValue::Secret("correct horse".to_owned().into());
        assert_eq!(rotated.fingerprint(), desired().fingerprint());
    }

    #[test]
    fn secret_versions_do_not_reach_the_fingerprint() {
        let version = |id: &str| {
            let mut d = desired();
            d.parameters.push((
                "RegistryPasswordVersion".into(),
                ParameterValue::SecretVersion(id.into()),
            ));
            d
        };
        let first = version("0b7e2a4c-5f0e-4c8e-9d61-1f2a3b4c5d6e");
        assert_eq!(
            first.fingerprint(),
            version("9c1d3e5f-7a8b-4c2d-8e4f-6a7b8c9d0e1f").fingerprint()
        );
        assert_ne!(first.fingerprint(), desired().fingerprint());
    }

    #[test]
    fn template_hash_is_the_body_sha256() {
        // `printf 'Resources: {}\n' | sha256sum`
        assert_eq!(
            desired().template_sha256(),
            "49cbd1e9008e8b67dec76613bb4d6468c822c99701820526928d43b382f35fba"
        );
    }
}
