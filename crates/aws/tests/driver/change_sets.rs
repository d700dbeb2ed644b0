//! Change sets: failed or refused ones cleaned up with their review stacks, previews that
//! read and delete theirs, and review stacks another plan still uses kept.

use super::fixtures::{change, change_set, desired, driver, stack, NAME, REFUSED};
use crate::scripted::Scripted;
use berth_aws::api::ChangeSetSummary;
use berth_aws::driver::{EnsureOutcome, PreviewKind};
use berth_aws::error::{ApiError, AwsError};

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
