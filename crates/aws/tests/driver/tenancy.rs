//! Finding the unit's stack by its tags (paginated, two matches refused), and another unit's
//! stack never planned against or deleted; the former stack name.

use super::fixtures::{change, change_set, desired, driver, foreign, owner, stack, NAME};
use crate::scripted::Scripted;
use berth_aws::api::{ChangeSetKind, StackSnapshot};
use berth_aws::error::AwsError;
use berth_aws::unit::Tag;

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
