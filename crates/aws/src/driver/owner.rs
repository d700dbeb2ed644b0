//! Whose a stack is: the `berth:company`/`berth:unit` tags Berth checks before it touches one.

use crate::api::StackSnapshot;
use crate::error::{AwsError, Result};
use crate::status::{phase, Phase};
use crate::unit::{Tag, TAG_COMPANY, TAG_UNIT};

/// The tags that say whose a stack is (`berth:company`, `berth:unit`), from the desired tags.
/// Without them Berth could not tell its stack from another's, so nothing is touched.
pub(super) fn owner_tags(tags: &[Tag]) -> Result<Vec<Tag>> {
    [TAG_COMPANY, TAG_UNIT]
        .iter()
        .map(|key| {
            tags.iter().find(|t| t.key == *key).cloned().ok_or_else(|| {
                AwsError::InvalidInput(format!(
                    "the desired stack carries no {key} tag: Berth only touches stacks whose \
                     {TAG_COMPANY} and {TAG_UNIT} tags name the unit"
                ))
            })
        })
        .collect()
}

fn describe_tags(tags: &[&Tag]) -> String {
    if tags.is_empty() {
        return "none".into();
    }
    tags.iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a stack whose `berth:company`/`berth:unit` tags do not name `owner`: Berth never
/// updates or deletes another unit's (or another tool's) stack, whatever its name. A stack
/// still in `REVIEW_IN_PROGRESS` (an empty stack a change set made, no resources yet) may
/// carry no tags at all; it is refused only when its tags name someone else.
pub(super) fn check_owner(stack: &StackSnapshot, owner: &[Tag]) -> Result<()> {
    let missing = owner.iter().any(|t| !stack.tags.contains(t));
    let contradicted = owner.iter().any(|o| {
        stack
            .tags
            .iter()
            .any(|t| t.key == o.key && t.value != o.value)
    });
    let refused = if phase(&stack.status) == Phase::Review {
        contradicted
    } else {
        missing
    };
    if !refused {
        return Ok(());
    }
    let found: Vec<&Tag> = stack
        .tags
        .iter()
        .filter(|t| t.key == TAG_COMPANY || t.key == TAG_UNIT)
        .collect();
    Err(AwsError::NotOurStack {
        stack: format!("{} ({})", stack.stack_name, stack.stack_id),
        expected: describe_tags(&owner.iter().collect::<Vec<_>>()),
        found: describe_tags(&found),
    })
}
