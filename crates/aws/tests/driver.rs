//! The stack driver's state machine against scripted CloudFormation answers: what no emulator
//! can show (rollbacks, long in-progress states, failure events, pagination).

mod scripted;

use std::time::Duration;

use berth_aws::api::{
    ChangeSetKind, ChangeSetSnapshot, ChangeSetSummary, ParameterValue, ResourceChange, StackEvent,
    StackSnapshot,
};
use berth_aws::driver::{
    ChangeAction, DeletionOutcome, DesiredStack, EnsureOutcome, PlannedChange, PreviewKind,
    ResourceFailure, StackDriver, StackPlan, WaitPolicy,
};
use berth_aws::error::{ApiError, AwsError};
use berth_aws::unit::{Tag, UnitIdentity};
use scripted::Scripted;

const NAME: &str = "berth-seaview-trucking";

/// `berth:company` and `berth:unit` of the unit every scripted stack belongs to.
fn owner() -> Vec<Tag> {
    UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking")
        .unwrap()
        .owner_tags()
        .to_vec()
}

fn stack(id: &str, status: &str) -> Option<StackSnapshot> {
    Some(StackSnapshot {
        stack_id: id.into(),
        stack_name: NAME.into(),
        status: status.into(),
        tags: owner(),
        ..Default::default()
    })
}

/// A stack of another unit (`berth:unit` = `haulage`).
fn foreign(id: &str, name: &str, status: &str) -> Option<StackSnapshot> {
    let mut tags = owner();
    tags[1].value = "haulage".into();
    Some(StackSnapshot {
        stack_id: id.into(),
        stack_name: name.into(),
        status: status.into(),
        tags,
        ..Default::default()
    })
}

fn change_set(
    status: &str,
    reason: Option<&str>,
    changes: Vec<ResourceChange>,
) -> ChangeSetSnapshot {
    ChangeSetSnapshot {
        change_set_id: "cs-1".into(),
        stack_id: "id-1".into(),
        status: status.into(),
        status_reason: reason.map(str::to_owned),
        execution_status: None,
        changes,
    }
}

fn change(action: &str, id: &str, replacement: Option<&str>) -> ResourceChange {
    ResourceChange {
        action: action.into(),
        logical_id: id.into(),
        resource_type: "AWS::SecretsManager::Secret".into(),
        physical_id: None,
        replacement: replacement.map(str::to_owned),
    }
}

fn event(id: &str, ty: &str, status: &str, reason: Option<&str>) -> StackEvent {
    StackEvent {
        logical_id: id.into(),
        resource_type: ty.into(),
        status: status.into(),
        reason: reason.map(str::to_owned),
    }
}

fn desired(known: Option<&str>) -> DesiredStack {
    DesiredStack {
        stack_name: NAME.into(),
        template_body: "{}".into(),
        parameters: vec![(
            "Secret".into(),
            ParameterValue::Secret("hunter2".to_owned().into()),
        )],
        tags: owner(),
        known_stack_id: known.map(str::to_owned),
        former_names: Vec::new(),
    }
}

fn fast() -> WaitPolicy {
    WaitPolicy {
        first_delay: Duration::from_nanos(1),
        max_delay: Duration::from_nanos(1),
        timeout: Duration::from_nanos(5),
    }
}

fn driver(api: Scripted) -> StackDriver<Scripted> {
    StackDriver::new(api, fast())
}

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

fn rollback_failed_events() -> Vec<StackEvent> {
    vec![
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "UPDATE_ROLLBACK_FAILED",
            Some("The following resource(s) failed to update: [S3User]."),
        ),
        event(
            "S3User",
            "AWS::IAM::User",
            "UPDATE_FAILED",
            Some("Resource handler returned message: \"rollback refused\""),
        ),
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            None,
        ),
        event(
            "S3User",
            "AWS::IAM::User",
            "UPDATE_FAILED",
            Some("Policy document is malformed"),
        ),
        event(
            NAME,
            "AWS::CloudFormation::Stack",
            "UPDATE_IN_PROGRESS",
            Some("User Initiated"),
        ),
    ]
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

#[tokio::test]
async fn deleting_a_live_stack_deletes_it_once_and_waits() {
    let d = driver(Scripted::default().describes(vec![
        stack("id-1", "UPDATE_COMPLETE"),
        stack("id-1", "DELETE_IN_PROGRESS"),
        stack("id-1", "DELETE_COMPLETE"),
    ]));
    assert_eq!(
        d.delete_once("id-1", &owner()).await.unwrap(),
        DeletionOutcome::Deleted
    );
    assert_eq!(
        d.api().calls(),
        [
            "describe id-1",
            "delete_stack id-1",
            "describe id-1",
            "describe id-1"
        ]
    );
}

#[tokio::test]
async fn a_deletion_in_progress_is_waited_for_not_repeated() {
    let d = driver(Scripted::default().describes(vec![
        stack("id-1", "DELETE_IN_PROGRESS"),
        stack("id-1", "DELETE_IN_PROGRESS"),
        stack("id-1", "DELETE_COMPLETE"),
    ]));
    assert_eq!(
        d.delete_once("id-1", &owner()).await.unwrap(),
        DeletionOutcome::FinishedEarlierDeletion
    );
    assert!(
        !d.api()
            .calls()
            .iter()
            .any(|c| c.starts_with("delete_stack")),
        "{:?}",
        d.api().calls()
    );
}

#[tokio::test]
async fn a_stack_already_gone_is_not_deleted_again() {
    for gone in [None, stack("id-1", "DELETE_COMPLETE")] {
        let d = driver(Scripted::default().describes(vec![gone]));
        assert_eq!(
            d.delete_once("id-1", &owner()).await.unwrap(),
            DeletionOutcome::AlreadyGone
        );
        assert_eq!(d.api().calls(), ["describe id-1"]);
    }
}

#[tokio::test]
async fn a_busy_stack_is_waited_out_before_deleting_and_a_failed_delete_needs_a_person() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "UPDATE_IN_PROGRESS"),
                stack("id-1", "UPDATE_COMPLETE"),
                stack("id-1", "DELETE_FAILED"),
            ])
            .with_events(vec![
                event(
                    "DataBucket",
                    "AWS::S3::Bucket",
                    "DELETE_FAILED",
                    Some("The bucket you tried to delete is not empty"),
                ),
                event(
                    NAME,
                    "AWS::CloudFormation::Stack",
                    "DELETE_IN_PROGRESS",
                    Some("User Initiated"),
                ),
            ]),
    );
    let err = d.delete_once("id-1", &owner()).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::StackNeedsAttention { status, cause: Some(cause), .. }
            if status == "DELETE_FAILED" && cause.contains("DataBucket") && cause.contains("not empty")),
        "{err:?}"
    );
    let calls = d.api().calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("delete_stack"))
            .count(),
        1,
        "{calls:?}"
    );
    // Found in DELETE_FAILED: no blind retry.
    let d = driver(Scripted::default().describes(vec![stack("id-1", "DELETE_FAILED")]));
    assert!(matches!(
        d.delete_once("id-1", &owner()).await,
        Err(AwsError::StackNeedsAttention { .. })
    ));
    assert!(!d
        .api()
        .calls()
        .iter()
        .any(|c| c.starts_with("delete_stack")));
}

#[tokio::test]
async fn a_vanished_stack_is_reported_not_recreated() {
    let d = driver(Scripted::default().describes(vec![stack("id-1", "DELETE_COMPLETE")]));
    let err = d.ensure(&desired(Some("id-1"))).await.unwrap_err();
    assert!(matches!(err, AwsError::StackVanished { .. }), "{err:?}");
    let d = driver(Scripted::default().describes(vec![None]));
    assert!(matches!(
        d.ensure(&desired(Some("id-1"))).await,
        Err(AwsError::StackVanished { .. })
    ));
    assert!(!d
        .api()
        .calls()
        .iter()
        .any(|c| c.starts_with("create_change_set")));
}

#[tokio::test]
async fn waiting_gives_up_after_the_budget() {
    let d = driver(Scripted::default().describes(vec![stack("id-1", "UPDATE_IN_PROGRESS"); 20]));
    let err = d.wait_until_settled("id-1").await.unwrap_err();
    assert!(
        matches!(err, AwsError::WaitTimeout { ref status, .. } if status == "UPDATE_IN_PROGRESS"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failed_change_set_is_deleted_and_its_reason_reported() {
    let d = driver(
        Scripted::default()
            .describes(vec![stack("id-1", "CREATE_COMPLETE")])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "FAILED",
                Some("Template format error: Unresolved resource dependencies [Nope]"),
                vec![],
            )),
    );
    let err = d.plan(&desired(None)).await.unwrap_err();
    assert!(
        matches!(err, AwsError::ChangeSetFailed { ref reason, .. } if reason.contains("Nope")),
        "{err:?}"
    );
    assert_eq!(
        d.api().calls(),
        [
            "describe berth-seaview-trucking",
            "create_change_set Update",
            "describe_change_set cs-1",
            "delete_change_set cs-1",
        ]
    );
}

/// CloudFormation's kind of answer to a DbUsername outside the template's AllowedPattern.
const REFUSED: &str = "Parameter DbUsername failed to satisfy constraint: lower-case letter first";

#[tokio::test]
async fn a_failed_create_change_set_takes_its_review_stack_along() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "DELETE_COMPLETE"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set("FAILED", Some(REFUSED), vec![])),
    );
    let err = d.ensure(&desired(None)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("change set cs-1 for stack {NAME} failed: {REFUSED}")
    );
    assert_eq!(
        d.api().calls(),
        [
            "describe berth-seaview-trucking",
            "create_change_set Create",
            "describe_change_set cs-1",
            "delete_change_set cs-1",
            "describe id-1",
            "list_change_sets id-1",
            "delete_stack id-1",
            "describe id-1",
        ]
    );
}

#[tokio::test]
async fn a_refused_create_deletes_the_review_stack_it_made() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-9", "REVIEW_IN_PROGRESS"),
                stack("id-9", "DELETE_COMPLETE"),
            ])
            .creates(Err(ApiError::new(
                "CreateChangeSet",
                Some("ValidationError"),
                REFUSED,
            ))),
    );
    let err = d.plan(&desired(None)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "AWS call for stack {NAME} failed: CreateChangeSet failed (ValidationError): {REFUSED}"
        )
    );
    let calls = d.api().calls();
    assert_eq!(
        calls[2..],
        [
            "describe berth-seaview-trucking",
            "list_change_sets id-9",
            "delete_stack id-9",
            "describe id-9",
        ],
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_change_set_that_cannot_be_described_is_deleted_anyway() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "DELETE_COMPLETE"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set_error(ApiError::new(
                "DescribeChangeSet",
                Some("AccessDenied"),
                "not authorized to perform: cloudformation:DescribeChangeSet",
            )),
    );
    let err = d.plan(&desired(None)).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::AccessDenied { operation: "DescribeChangeSet", resource, .. }
            if resource == "change set cs-1"),
        "{err:?}"
    );
    let calls = d.api().calls();
    assert!(
        calls.contains(&"delete_change_set cs-1".into())
            && calls.contains(&"delete_stack id-1".into()),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_preview_reads_the_change_set_then_deletes_it_and_the_review_stack() {
    let d = driver(
        Scripted::default()
            .describes(vec![
                None,
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "DELETE_COMPLETE"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "DatabaseSecret", None)],
            )),
    );
    let preview = d.preview(&desired(None)).await.unwrap();
    assert_eq!(preview.kind, PreviewKind::Create);
    assert_eq!(
        preview.to_string(),
        format!("stack {NAME}: create: 1 to add\n  + DatabaseSecret AWS::SecretsManager::Secret")
    );
    assert_eq!(preview.parameters.len(), 1);
    assert_eq!(
        (
            preview.parameters[0].key.as_str(),
            preview.parameters[0].value.as_str()
        ),
        ("Secret", "[redacted]")
    );
    assert!(!serde_json::to_string(&preview).unwrap().contains("hunter2"));
    assert_eq!(preview.fingerprint, desired(None).fingerprint());
    assert_eq!(
        d.api().calls(),
        [
            "describe berth-seaview-trucking",
            "create_change_set Create",
            "describe_change_set cs-1",
            "delete_change_set cs-1",
            "describe id-1",
            "list_change_sets id-1",
            "delete_stack id-1",
            "describe id-1",
        ]
    );
}

#[tokio::test]
async fn discarding_keeps_a_review_stack_another_plan_still_uses() {
    let other = |id: &str, status: &str| ChangeSetSummary {
        change_set_id: id.into(),
        stack_id: "id-1".into(),
        stack_name: NAME.into(),
        status: status.into(),
        ..Default::default()
    };
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "REVIEW_IN_PROGRESS"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "DatabaseSecret", None)],
            ))
            // Ours (not deleted yet as far as the listing goes), one being deleted, and one
            // another plan waits on.
            .lists_change_sets(vec![
                other("cs-1", "CREATE_COMPLETE"),
                other("cs-old", "DELETE_IN_PROGRESS"),
                other("cs-2", "CREATE_COMPLETE"),
            ]),
    );
    let plan = d.plan(&desired(None)).await.unwrap();
    d.discard(&plan).await.unwrap();
    let calls = d.api().calls();
    assert!(
        calls.contains(&"delete_change_set cs-1".into()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("delete_stack")),
        "{calls:?}"
    );

    // Without the other plan's change set, the review stack goes.
    let d = driver(
        Scripted::default()
            .describes(vec![
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "REVIEW_IN_PROGRESS"),
                stack("id-1", "DELETE_COMPLETE"),
            ])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set("CREATE_COMPLETE", None, vec![]))
            .lists_change_sets(vec![
                other("cs-1", "CREATE_COMPLETE"),
                other("cs-old", "DELETE_IN_PROGRESS"),
            ]),
    );
    let plan = d.plan(&desired(None)).await.unwrap();
    d.discard(&plan).await.unwrap();
    assert!(d.api().calls().contains(&"delete_stack id-1".into()));
}

#[tokio::test]
async fn an_empty_change_set_left_behind_fails_a_preview_but_not_an_ensure() {
    let script = || {
        Scripted::default()
            .describes(vec![stack("id-1", "UPDATE_COMPLETE"), stack("id-1", "UPDATE_COMPLETE")])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "FAILED",
                Some("The submitted information didn't contain changes. Submit different information to create a change set."),
                vec![],
            ))
            .deletes_change_set(Err(ApiError::new(
                "DeleteChangeSet",
                Some("AccessDenied"),
                "not authorized to perform: cloudformation:DeleteChangeSet",
            )))
    };
    let err = driver(script()).preview(&desired(None)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            AwsError::AccessDenied {
                operation: "DeleteChangeSet",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        driver(script()).ensure(&desired(None)).await.unwrap(),
        EnsureOutcome::Unchanged { .. }
    ));
}

#[tokio::test]
async fn a_preview_never_clears_a_failed_first_create() {
    let d = driver(Scripted::default().describes(vec![stack("id-1", "ROLLBACK_COMPLETE")]));
    let err = d.preview(&desired(None)).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::PreviewUnavailable { status, .. } if status == "ROLLBACK_COMPLETE"),
        "{err:?}"
    );
    assert_eq!(d.api().calls(), ["describe berth-seaview-trucking"]);
}

#[tokio::test]
async fn find_by_tag_paginates_and_refuses_two_matches() {
    let tag = Tag {
        key: "SeaView".into(),
        value: "Trucking".into(),
    };
    let tagged = |id: &str, status: &str| StackSnapshot {
        stack_id: id.into(),
        stack_name: format!("name-{id}"),
        status: status.into(),
        tags: vec![tag.clone()],
        ..Default::default()
    };
    let api = Scripted::default();
    api.pages.lock().unwrap().extend([
        (vec![StackSnapshot::default()], Some("t1".into())),
        (vec![tagged("a", "CREATE_COMPLETE")], Some("t2".into())),
        (vec![tagged("b", "UPDATE_COMPLETE")], None),
    ]);
    let d = driver(api);
    let err = d.find_by_tag(&tag).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("name-a (a)") && text.contains("name-b (b)"),
        "{text}"
    );

    let api = Scripted::default();
    api.pages.lock().unwrap().extend([
        (vec![tagged("gone", "DELETE_COMPLETE")], Some("t1".into())),
        (vec![tagged("b", "UPDATE_COMPLETE")], None),
    ]);
    let d = driver(api);
    assert_eq!(d.find_by_tag(&tag).await.unwrap().unwrap().stack_id, "b");
    assert_eq!(d.api().calls(), vec!["list None", "list Some(\"t1\")"]);
}

/// Tenancy: a stack Berth would update (found by its name or its recorded id) whose
/// `berth:company`/`berth:unit` tags name someone else is refused before any change set.
#[tokio::test]
async fn another_units_stack_is_never_planned_against() {
    for (known, status) in [
        (None, "CREATE_COMPLETE"),
        (Some("id-9"), "UPDATE_COMPLETE"),
        // A failed create of someone else's is not deleted to make room either.
        (None, "ROLLBACK_COMPLETE"),
        (None, "REVIEW_IN_PROGRESS"),
    ] {
        let d = driver(Scripted::default().describes(vec![foreign("id-9", NAME, status)]));
        let err = d.ensure(&desired(known)).await.unwrap_err();
        assert!(
            matches!(&err, AwsError::NotOurStack { found, expected, .. }
                if found.contains("berth:unit=haulage") && expected.contains("berth:unit=trucking")),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(
            d.api().calls(),
            [format!("describe {}", known.unwrap_or(NAME))]
        );
    }
    // Untagged: not provably the unit's (a review stack without tags yet is the exception).
    let mut untagged = stack("id-9", "UPDATE_COMPLETE");
    untagged.as_mut().unwrap().tags.clear();
    let d = driver(Scripted::default().describes(vec![untagged]));
    let err = d.preview(&desired(None)).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::NotOurStack { found, .. } if found == "none"),
        "{err:?}"
    );
}

#[tokio::test]
async fn another_units_stack_is_never_deleted() {
    let d = driver(Scripted::default().describes(vec![foreign("id-9", NAME, "UPDATE_COMPLETE")]));
    let err = d.delete_once("id-9", &owner()).await.unwrap_err();
    assert!(matches!(err, AwsError::NotOurStack { .. }), "{err:?}");
    assert_eq!(d.api().calls(), ["describe id-9"]);
    // Without owner tags there is nothing to check against: refused before any call.
    let d = driver(Scripted::default());
    assert!(matches!(
        d.delete_once("id-9", &[]).await,
        Err(AwsError::InvalidInput(_))
    ));
    assert!(d.api().calls().is_empty());
}

/// A unit's stack from before `berth-<company>--<unit>` is found under its former name and
/// updated there; a stack under that name with another unit's tags is left alone.
#[tokio::test]
async fn a_stack_under_its_former_name_is_the_units_only_by_its_tags() {
    let mut legacy = desired(None);
    legacy.stack_name = "berth-seaview--trucking".into();
    legacy.former_names = vec![NAME.into()];
    let d = driver(
        Scripted::default()
            .describes(vec![None, stack("id-1", "UPDATE_COMPLETE")])
            .creates(Ok(("cs-1".into(), "id-1".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Modify", "RegistrySecret", Some("False"))],
            )),
    );
    let plan = d.plan(&legacy).await.unwrap();
    assert_eq!(plan.kind, ChangeSetKind::Update);
    assert_eq!(plan.stack_name, NAME);
    assert_eq!(
        d.api().changed_stacks(),
        [NAME],
        "the change set targets the stack as it is named"
    );

    let d = driver(
        Scripted::default()
            .describes(vec![None, foreign("id-9", NAME, "UPDATE_COMPLETE")])
            .creates(Ok(("cs-1".into(), "id-2".into())))
            .change_set(change_set(
                "CREATE_COMPLETE",
                None,
                vec![change("Add", "RegistrySecret", None)],
            )),
    );
    let plan = d.plan(&legacy).await.unwrap();
    assert_eq!(plan.kind, ChangeSetKind::Create);
    assert_eq!(d.api().changed_stacks(), ["berth-seaview--trucking"]);
}

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
