//! Finding, creating, updating and deleting a unit's stack; tenancy (a stack tagged as
//! another unit's is never touched); the former stack name.

use super::support::{assert_only_registry_secret_modified, stack_state};
use crate::common::{
    create_trucking, emulator_available, params, stage, trucking, Clients, REGISTRY_PASSWORD,
};
use berth_aws::{AwsError, ChangeAction, DeletionOutcome, EnsureKind, UnitIdentity};

#[tokio::test]
async fn create_find_read_update_delete() {
    if !emulator_available("create_find_read_update_delete") {
        return;
    }
    let stage = stage().await;
    let unit = trucking();

    // Create.
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    assert_eq!(created.kind, EnsureKind::Created);
    assert_eq!(created.stack.status, "CREATE_COMPLETE");
    let plan = created.plan.as_ref().unwrap();
    assert!(plan.count(ChangeAction::Add) >= 6, "{plan}");
    assert!(created
        .outputs
        .database_secret_arn
        .starts_with("arn:aws:secretsmanager:"));
    assert_eq!(created.outputs.data_prefix, "trucking/");

    // Find by tag, with resources and outputs.
    let found = stage
        .find_unit_stack(&unit)
        .await
        .unwrap()
        .expect("stack found by tag");
    assert_eq!(found.stack.stack_id, created.stack.stack_id);
    assert!(found
        .stack
        .tags
        .iter()
        .any(|t| t.key == "SeaView" && t.value == "Trucking"));
    let types: Vec<_> = found
        .resources
        .iter()
        .map(|r| (r.logical_id.as_str(), r.resource_type.as_str()))
        .collect();
    assert!(
        types.contains(&("DatabaseSecret", "AWS::SecretsManager::Secret")),
        "{types:?}"
    );
    assert!(types.contains(&("S3User", "AWS::IAM::User")), "{types:?}");
    assert_eq!(found.outputs().unwrap(), created.outputs);

    // Read the generated secrets back.
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.password.expose(), REGISTRY_PASSWORD);
    assert_eq!(secrets.database.username, "trucking");
    assert_eq!(secrets.database.password.expose().len(), 32);
    assert_eq!(secrets.oauth.client_id, "seaview-trucking");
    assert_eq!(secrets.oauth.client_secret.expose().len(), 48);
    assert!(secrets.s3.access_key_id.starts_with("AKIA"));
    assert_eq!(secrets.s3.bucket, created.outputs.data_bucket_name);
    let db_password = secrets.database.password.expose().to_owned();

    // Same inputs: nothing to do.
    let again = stage
        .ensure_unit_stack(&unit, &params(), Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_eq!(again.kind, EnsureKind::Unchanged);
    assert!(again.plan.is_none());

    // A changed parameter modifies only the secret that uses it.
    let mut changed = params();
    changed.registry_server = "registry2.seaview.example".into();
    let plan = stage
        .plan_unit_stack(&unit, &changed, Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_only_registry_secret_modified(&plan);
    let updated = stage.apply_plan(&plan).await.unwrap();
    assert_eq!(updated.status, "UPDATE_COMPLETE");
    let after = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(after.registry.server, "registry2.seaview.example");
    assert_eq!(
        after.database.password.expose(),
        db_password,
        "generated password must survive updates"
    );

    // And a second identical update is a no-op again.
    let again = stage
        .ensure_unit_stack(&unit, &changed, Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_eq!(again.kind, EnsureKind::Unchanged);

    // Delete.
    let deletion = stage.delete_unit_stack(&unit).await.unwrap();
    assert_eq!(deletion.outcome, DeletionOutcome::Deleted);
    assert_eq!(
        deletion.stack_id.as_deref(),
        Some(created.stack.stack_id.as_str())
    );
    assert!(stage.find_unit_stack(&unit).await.unwrap().is_none());
    let kept = stage.read_unit_secrets(&created.outputs).await;
    assert!(
        kept.is_ok(),
        "secrets are retained by their DeletionPolicy: {kept:?}"
    );
    // A stack Berth knew about and that vanished is reported, not recreated.
    let err = stage
        .ensure_unit_stack(&unit, &params(), Some(&created.stack.stack_id))
        .await
        .unwrap_err();
    assert!(
        matches!(err, berth_aws::AwsError::StackVanished { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn two_stacks_with_the_unit_tag_are_an_error_naming_both() {
    if !emulator_available("two_stacks_with_the_unit_tag_are_an_error_naming_both") {
        return;
    }
    let stage = stage().await;
    let (unit, created) = create_trucking(&stage).await;
    // A second unit whose rendered tag collides with the first (same display names): its
    // slug tags tell them apart.
    let twin = UnitIdentity::parse("seaview", "SeaView", "trucking-2", "Trucking").unwrap();
    stage
        .ensure_unit_stack(&twin, &params(), None)
        .await
        .unwrap();
    let found = stage.find_unit_stack(&unit).await.unwrap().unwrap();
    assert_eq!(found.stack.stack_id, created.stack.stack_id);
    // A second stack with all of the unit's tags (one under the former name, its secrets
    // named apart): an error.
    let apart = unit.clone().with_incarnation("0a1b2c3d").unwrap();
    let mut former = stage.desired_stack(&apart, &params(), None).await.unwrap();
    former.stack_name = unit.legacy_stack_name();
    former.former_names.clear();
    stage.driver().ensure(&former).await.unwrap();
    let err = stage.find_unit_stack(&unit).await.unwrap_err().to_string();
    assert!(
        err.contains("berth-seaview--trucking ") && err.contains("berth-seaview-trucking "),
        "{err}"
    );
}

/// Tenancy: a stack named as the unit's stack is named, but tagged as another unit's (or
/// another company's), is refused, never updated or deleted, and left exactly as it was.
#[tokio::test]
async fn a_stack_of_the_same_name_with_other_tags_is_refused_and_left_untouched() {
    if !emulator_available("a_stack_of_the_same_name_with_other_tags_is_refused_and_left_untouched")
    {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    let cfn = &clients.cloudformation;
    let tag = |k: &str, v: &str| {
        aws_sdk_cloudformation::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    // Someone else's stack under the unit's stack name, with the company's unit tag even.
    let template = r#"{"Resources":{"Topic":{"Type":"AWS::SNS::Topic"}}}"#;
    let theirs = cfn
        .create_stack()
        .stack_name(unit.stack_name())
        .template_body(template)
        .tags(tag("SeaView", "Trucking"))
        .tags(tag("berth:company", "seaview"))
        .tags(tag("berth:unit", "haulage"))
        .send()
        .await
        .unwrap()
        .stack_id()
        .unwrap()
        .to_owned();
    let before = stack_state(cfn, &theirs).await;
    assert_eq!(before.0, "CREATE_COMPLETE");

    // Not updated: by name, and by a recorded id that is not the unit's.
    for known in [None, Some(theirs.as_str())] {
        let err = stage
            .ensure_unit_stack(&unit, &params(), known)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AwsError::NotOurStack { found, .. }
                if found == "berth:company=seaview, berth:unit=haulage"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("neither updates nor deletes it"),
            "{err}"
        );
        let err = stage
            .preview_unit_stack(&unit, &params(), known)
            .await
            .unwrap_err();
        assert!(matches!(err, AwsError::NotOurStack { .. }), "{err:?}");
    }
    // Not deleted: not found as the unit's stack, and refused when named directly.
    assert!(stage.find_unit_stack(&unit).await.unwrap().is_none());
    let deletion = stage.delete_unit_stack(&unit).await.unwrap();
    assert_eq!(deletion.outcome, DeletionOutcome::AlreadyGone);
    let err = stage
        .driver()
        .delete_once(&theirs, &unit.owner_tags())
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::NotOurStack { .. }), "{err:?}");

    // Left exactly as it was: same status, tags and last update, no change set on it.
    assert_eq!(stack_state(cfn, &theirs).await, before);
    let sets = cfn
        .list_change_sets()
        .stack_name(&theirs)
        .send()
        .await
        .unwrap();
    assert!(
        sets.summaries()
            .iter()
            .all(|c| c.stack_id() != Some(theirs.as_str())),
        "{sets:?}"
    );
}

/// A unit whose stack was made under the former name `berth-<company>-<unit>` keeps it: found
/// by its tags and updated there, never a second stack beside it.
#[tokio::test]
async fn a_stack_under_the_former_name_keeps_working() {
    if !emulator_available("a_stack_under_the_former_name_keeps_working") {
        return;
    }
    let stage = stage().await;
    let unit = trucking();
    let mut former = stage.desired_stack(&unit, &params(), None).await.unwrap();
    former.stack_name = unit.legacy_stack_name();
    former.former_names.clear();
    let made = stage.driver().ensure(&former).await.unwrap();
    let made = made.stack().clone();
    assert_eq!(made.stack_name, "berth-seaview-trucking");

    let mut changed = params();
    changed.registry_server = "registry2.seaview.example".into();
    // No recorded id (as for a run that crashed before recording it): found by name and tags.
    let updated = stage
        .ensure_unit_stack(&unit, &changed, None)
        .await
        .unwrap();
    assert_eq!(updated.kind, EnsureKind::Updated);
    assert_eq!(updated.stack.stack_id, made.stack_id);
    let found = stage.find_unit_stack(&unit).await.unwrap().unwrap();
    assert_eq!(found.stack.stack_id, made.stack_id);
    // And by its recorded id.
    let again = stage
        .ensure_unit_stack(&unit, &changed, Some(&made.stack_id))
        .await
        .unwrap();
    assert_eq!(again.kind, EnsureKind::Unchanged);

    // Another company's stack under an ambiguous former name is not taken: company
    // `seaview-x`'s unit `trucking` was `berth-seaview-x-trucking`, as unit `x-trucking` of
    // `seaview` would have been.
    let other_company =
        UnitIdentity::parse("seaview-x", "SeaView X", "trucking", "Trucking").unwrap();
    let mut theirs = stage
        .desired_stack(&other_company, &params(), None)
        .await
        .unwrap();
    theirs.stack_name = other_company.legacy_stack_name();
    theirs.former_names.clear();
    let theirs = stage
        .driver()
        .ensure(&theirs)
        .await
        .unwrap()
        .stack()
        .clone();
    let ours = UnitIdentity::parse("seaview", "SeaView", "x-trucking", "X Trucking").unwrap();
    assert_eq!(ours.legacy_stack_name(), theirs.stack_name);
    let created = stage
        .ensure_unit_stack(&ours, &params(), None)
        .await
        .unwrap();
    assert_eq!(created.kind, EnsureKind::Created);
    assert_eq!(created.stack.stack_name, "berth-seaview--x-trucking");
    assert_ne!(created.stack.stack_id, theirs.stack_id);
}
