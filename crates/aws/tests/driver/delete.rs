//! Deleting a stack: once, waited for, never repeated or recreated, a busy stack waited out,
//! and a wait that gives up after its budget.

use super::fixtures::{desired, driver, event, owner, stack, NAME};
use crate::scripted::Scripted;
use berth_aws::driver::DeletionOutcome;
use berth_aws::error::AwsError;

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
