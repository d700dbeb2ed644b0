//! Reading a failed operation's stack events into one message, root cause first.

use serde::{Deserialize, Serialize};

use crate::api::StackEvent;

/// One resource that failed in the last stack operation, as its stack event reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFailure {
    pub logical_id: String,
    pub resource_type: String,
    /// `CREATE_FAILED`, `UPDATE_FAILED`, `DELETE_FAILED`, …
    pub status: String,
    pub reason: String,
}

impl std::fmt::Display for ResourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) {}: {}",
            self.logical_id, self.resource_type, self.status, self.reason
        )
    }
}

/// The events of the last operation (since the stack's "User Initiated" event), oldest first.
fn last_operation<'a>(stack_name: &str, events: &'a [StackEvent]) -> Vec<&'a StackEvent> {
    // Events are newest first; the operation began at the stack's "User Initiated" event.
    let mut operation = Vec::new();
    for event in events {
        let is_start = event.logical_id == stack_name
            && event.status.ends_with("_IN_PROGRESS")
            && event.reason.as_deref() == Some("User Initiated");
        if is_start {
            break;
        }
        operation.push(event);
    }
    operation.reverse();
    operation
}

/// The resources that failed in the last operation, root cause first; resources whose
/// operation was only cancelled because another failed are left out.
pub fn operation_failures(stack_name: &str, events: &[StackEvent]) -> Vec<ResourceFailure> {
    last_operation(stack_name, events)
        .into_iter()
        .filter(|e| e.status.ends_with("_FAILED") && e.logical_id != stack_name)
        .filter(|e| {
            let reason = e.reason.as_deref().unwrap_or_default();
            !reason.contains("cancelled")
        })
        .map(|e| ResourceFailure {
            logical_id: e.logical_id.clone(),
            resource_type: e.resource_type.clone(),
            status: e.status.clone(),
            reason: e.reason.clone().unwrap_or_else(|| "no reason given".into()),
        })
        .collect()
}

/// Turns the events of the last operation into a short message naming resources and reasons,
/// root cause first.
pub fn summarize_failure(
    stack_name: &str,
    events: &[StackEvent],
    fallback: Option<&str>,
) -> String {
    let failures = operation_failures(stack_name, events);
    summarize_failures(stack_name, events, &failures, fallback)
}

/// [`summarize_failure`] over failures already read with [`operation_failures`].
pub(crate) fn summarize_failures(
    stack_name: &str,
    events: &[StackEvent],
    failures: &[ResourceFailure],
    fallback: Option<&str>,
) -> String {
    let failures: Vec<String> = failures.iter().map(ToString::to_string).collect();
    match failures.len() {
        0 => last_operation(stack_name, events)
            .iter()
            .rev()
            .find_map(|e| {
                (e.logical_id == stack_name)
                    .then_some(e.reason.as_deref())
                    .flatten()
            })
            .or(fallback)
            .unwrap_or("no failure reason in the stack events")
            .to_owned(),
        1..=3 => failures.join("; "),
        n => format!("{}; and {} more", failures[..3].join("; "), n - 3),
    }
}
