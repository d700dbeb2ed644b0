//! Ensuring a stack: created when missing, waited through in-progress states, no changes as
//! success, a ROLLBACK_COMPLETE stack replaced, failed creates and updates reported, and
//! rollbacks that fail left for a person.

use super::fixtures::{
    change, change_set, desired, driver, event, rollback_failed_events, stack, NAME,
};
use crate::scripted::Scripted;
use berth_aws::driver::{EnsureOutcome, ResourceFailure};
use berth_aws::error::{ApiError, AwsError};

#[tokio::test]
async fn creates_a_missing_stack_and_waits_through_in_progress() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-1", "CREATE_IN_PROGRESS"),
                stack("id-1", "CREATE_IN_PROGRESS"),
                stack("id-1", "CREATE_COMPLETE"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set("CREATE_PENDING", None, vec![]))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "DatabaseSecret", None)],
            )),
    );
    let outcome = d.ensure(&desired(None)).await.unwrap();
    let EnsureOutcome::Created { stack, plan } = outcome else {
        panic!("expected Created, got {outcome:?}")
    };
    assert_eq!(stack.status, "CREATE_COMPLETE");
    assert_eq!(plan.summary(), "create: 1 to add");
    assert!(d
        .api()
        .calls()
        .contains(&"create_change_set Create".to_string()));
    assert!(d.api().calls().contains(&"execute cs-1".to_string()));
}

#[tokio::test]
async fn no_changes_is_success_and_leaves_no_change_set() {
    let d = driver(
        Scripted::default()
            .describes(vec![stack("id-1", "UPDATE_COMPLETE"), stack("id-1", "UPDATE_COMPLETE")])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "FAILED",
                Some("The submitted information didn't contain changes. Submit different information to create a change set."),
                vec![],
            )),
    );
    let outcome = d.ensure(&desired(None)).await.unwrap();
    assert!(
        matches!(outcome, EnsureOutcome::Unchanged { .. }),
        "{outcome:?}"
    );
    let calls = d.api().calls();
    assert!(calls.contains(&"delete_change_set cs-1".to_string()));
    assert!(!calls.iter().any(|c| c.starts_with("execute")));
}

#[tokio::test]
async fn no_updates_error_from_the_api_is_success_too() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "CREATE_COMPLETE"),
                stack("id-1", "CREATE_COMPLETE"),
            ])
            .creates(Err(ApiError::new(
                "CreateChangeSet",
                Some("ValidationError"),
                "No updates are to be performed.",
            ))),
    );
    assert!(matches!(
        d.ensure(&desired(None)).await.unwrap(),
        EnsureOutcome::Unchanged { .. }
    ));
}

#[tokio::test]
async fn rollback_complete_is_deleted_then_recreated() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("old", "ROLLBACK_COMPLETE"),
                stack("old", "DELETE_IN_PROGRESS"),
                stack("old", "DELETE_COMPLETE"),
                stack("new", "CREATE_COMPLETE"),
            ])
            .with_events(vec![event(
                NAME,
                "AWS::CloudFormation::Stack",
                "ROLLBACK_COMPLETE",
                None,
            )])
            .creates(Ok(("cs-1".into(), "new".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "DatabaseSecret", None)],
            )),
    );
    let outcome = d.ensure(&desired(None)).await.unwrap();
    assert!(
        matches!(outcome, EnsureOutcome::Created { .. }),
        "{outcome:?}"
    );
    let calls = d.api().calls();
    let delete = calls
        .iter()
        .position(|c| c == "delete_stack old")
        .expect("old stack deleted");
    let create = calls
        .iter()
        .position(|c| c == "create_change_set Create")
        .unwrap();
    assert!(delete < create, "{calls:?}");
}

#[tokio::test]
async fn failed_create_names_resource_and_reason() {
    let events = vec![
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "ROLLBACK_COMPLETE",
            None,
        ),
        event(
            "DatabaseSecret",
            "AWS::SecretsManager::Secret",
            "DELETE_COMPLETE",
            None,
        ),
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "ROLLBACK_IN_PROGRESS",
            Some("The following resource(s) failed to create: [S3User]."),
        ),
        event(
            "DatabaseSecret",
            "AWS::SecretsManager::Secret",
            "CREATE_FAILED",
            Some("Resource creation cancelled"),
        ),
        event(
            "S3User",
            "AWS::IAM::User",
            "CREATE_FAILED",
            Some("User: arn:aws:iam::1:user/berth is not authorized to perform: iam:CreateUser"),
        ),
        event("S3User", "AWS::IAM::User", "CREATE_IN_PROGRESS", None),
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "CREATE_IN_PROGRESS",
            Some("User Initiated"),
        ),
        event(
            "Older",
            "AWS::IAM::User",
            "CREATE_FAILED",
            Some("from a previous attempt"),
        ),
    ];
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-1", "ROLLBACK_IN_PROGRESS"),
                stack("id-1", "ROLLBACK_COMPLETE"),
            ])
            .with_events(events)
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "S3User", None)],
            )),
    );
    let err = d.ensure(&desired(None)).await.unwrap_err();
    let AwsError::StackFailed {
        status, summary, ..
    } = &err
    else {
        panic!("expected StackFailed, got {err:?}")
    };
    assert_eq!(status, "ROLLBACK_COMPLETE");
    assert_eq!(
        summary,
        "S3User (AWS::IAM::User) CREATE_FAILED: User: arn:aws:iam::1:user/berth is not authorized to perform: iam:CreateUser"
    );
}

#[tokio::test]
async fn update_rollback_is_an_error_and_the_stack_stays_usable() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "UPDATE_ROLLBACK_COMPLETE"),
                stack("id-1", "UPDATE_ROLLBACK_IN_PROGRESS"),
                stack("id-1", "UPDATE_ROLLBACK_COMPLETE"),
            ])
            .with_events(vec![
                event(
                    NAME,
                    "AWS::CloudFormation::Stack",
                    "UPDATE_ROLLBACK_COMPLETE",
                    None,
                ),
                event(
                    "RegistrySecret",
                    "AWS::SecretsManager::Secret",
                    "UPDATE_FAILED",
                    Some("KMS key not found"),
                ),
                event(
                    NAME,
                    "AWS::CloudFormation::Stack",
                    "UPDATE_IN_PROGRESS",
                    Some("User Initiated"),
                ),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Modify", "RegistrySecret", Some("False"))],
            )),
    );
    let err = d.ensure(&desired(None)).await.unwrap_err();
    let AwsError::UpdateRolledBack {
        stack,
        failures,
        summary,
    } = &err
    else {
        panic!("expected UpdateRolledBack, got {err:?}")
    };
    assert_eq!(stack, NAME);
    assert_eq!(
        failures.as_slice(),
        [ResourceFailure {
            logical_id: "RegistrySecret".into(),
            resource_type: "AWS::SecretsManager::Secret".into(),
            status: "UPDATE_FAILED".into(),
            reason: "KMS key not found".into(),
        }]
    );
    assert_eq!(
        summary,
        "RegistrySecret (AWS::SecretsManager::Secret) UPDATE_FAILED: KMS key not found"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "update of stack {NAME} failed and was rolled back to its previous template and \
             parameters (the stack is usable): {summary}"
        )
    );
    assert!(!err.is_retryable());
    // The previous rollback did not stop Berth from planning an update.
    assert!(d
        .api()
        .calls()
        .contains(&"create_change_set Update".to_string()));
}

#[tokio::test]
async fn an_update_whose_rollback_fails_needs_a_person() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "UPDATE_COMPLETE"),
                stack("id-1", "UPDATE_ROLLBACK_IN_PROGRESS"),
                stack("id-1", "UPDATE_ROLLBACK_FAILED"),
            ])
            .with_events(rollback_failed_events())
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Modify", "S3User", Some("False"))],
            )),
    );
    let err = d.ensure(&desired(None)).await.unwrap_err();
    let AwsError::StackNeedsAttention { status, cause, .. } = &err else {
        panic!("expected StackNeedsAttention, got {err:?}")
    };
    assert_eq!(status, "UPDATE_ROLLBACK_FAILED");
    let cause = cause.as_deref().unwrap();
    assert!(
        cause.starts_with("S3User (AWS::IAM::User) UPDATE_FAILED: Policy document is malformed"),
        "{cause}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn update_rollback_failed_needs_a_person() {
    let d = driver(
        Scripted::default()
            .describes(vec![stack("id-1", "UPDATE_ROLLBACK_FAILED")])
            .with_events(rollback_failed_events()),
    );
    let err = d.ensure(&desired(None)).await.unwrap_err();
    assert!(
        matches!(err, AwsError::StackNeedsAttention { ref status, .. } if status == "UPDATE_ROLLBACK_FAILED"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "stack {NAME} is in UPDATE_ROLLBACK_FAILED and needs manual attention: fix the cause"
        )) && text.contains("ContinueUpdateRollback")
            && text.contains(
                "(cause: S3User (AWS::IAM::User) UPDATE_FAILED: Policy document is malformed"
            ),
        "{text}"
    );
    assert!(!err.is_retryable());
    assert!(!d
        .api()
        .calls()
        .iter()
        .any(|c| c.starts_with("create_change_set")));
}
