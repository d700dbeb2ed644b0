//! Reading a failed operation's stack events into one message, root cause first.

use crate::api::StackEvent;

/// Turns the events of the last operation into a short message naming resources and reasons,
/// root cause first.
pub fn summarize_failure(
    stack_name: &str,
    events: &[StackEvent],
    fallback: Option<&str>,
) -> String {
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
    let failures: Vec<String> = operation
        .iter()
        .filter(|e| e.status.ends_with("_FAILED") && e.logical_id != stack_name)
        .filter(|e| {
            let reason = e.reason.as_deref().unwrap_or_default();
            !reason.contains("cancelled")
        })
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    match failures.len() {
        0 => operation
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
