//! How a plan reads, secret parameters redacted in `Debug`, and the default wait policy.

use std::time::Duration;

use super::fixtures::{change, desired, NAME};
use berth_aws::api::ChangeSetKind;
use berth_aws::driver::{ChangeAction, PlannedChange, StackPlan, WaitPolicy};

#[test]
fn plan_reads_like_a_diff() {
    let plan = StackPlan {
        stack_name: NAME.into(),
        stack_id: "id".into(),
        kind: ChangeSetKind::Update,
        change_set_id: Some("cs".into()),
        changes: vec![
            PlannedChange::from(&change("Modify", "RegistrySecret", Some("False"))),
            PlannedChange::from(&change("Modify", "DatabaseSecret", Some("True"))),
            PlannedChange::from(&change("Remove", "Old", None)),
        ],
    };
    assert_eq!(plan.changes[1].action, ChangeAction::Replace);
    assert_eq!(plan.changes[1].replacement.as_deref(), Some("True"));
    assert_eq!(
        plan.to_string(),
        "stack berth-seaview-trucking: update: 1 to modify, 1 to replace, 1 to remove\n  \
         ~ RegistrySecret AWS::SecretsManager::Secret\n  \
         ± DatabaseSecret AWS::SecretsManager::Secret (replaced)\n  \
         - Old AWS::SecretsManager::Secret"
    );
}

#[test]
fn secret_parameters_are_redacted_in_debug() {
    let text = format!("{:?}", desired(None));
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("[redacted]"));
}

#[test]
fn the_default_wait_doubles_from_one_second_to_fifteen_for_thirty_minutes() {
    let mut delays = WaitPolicy::default().delays();
    let first: Vec<u64> = delays.by_ref().take(6).map(|d| d.as_secs()).collect();
    assert_eq!(first, [1, 2, 4, 8, 15, 15]);
    assert!(delays.all(|d| d == Duration::from_secs(15)));
    assert_eq!(delays.waited(), Duration::from_secs(30 * 60));
}
