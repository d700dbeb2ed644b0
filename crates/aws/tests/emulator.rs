//! Integration tests against the local AWS emulator; see common/mod.rs for how the emulator
//! is chosen and how tests are isolated.

mod common;

use berth_aws::{ChangeAction, EnsureKind, UnitIdentity};
use common::{emulator_available, params, stage, trucking, REGISTRY_PASSWORD};

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
    let touched: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.action, c.logical_id.as_str()))
        .collect();
    assert_eq!(
        touched,
        vec![(ChangeAction::Modify, "RegistrySecret")],
        "{plan}"
    );
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
    assert!(stage.delete_unit_stack(&unit).await.unwrap());
    assert!(stage.find_unit_stack(&unit).await.unwrap().is_none());
    let gone = stage.read_unit_secrets(&created.outputs).await;
    assert!(gone.is_err(), "secrets deleted with the stack");
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
    let unit = trucking();
    stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    // A second unit whose rendered tag collides with the first (same display names).
    let twin = UnitIdentity::parse("seaview", "SeaView", "trucking-2", "Trucking").unwrap();
    stage
        .ensure_unit_stack(&twin, &params(), None)
        .await
        .unwrap();
    let err = stage.find_unit_stack(&unit).await.unwrap_err().to_string();
    assert!(
        err.contains("berth-seaview-trucking ") && err.contains("berth-seaview-trucking-2 "),
        "{err}"
    );
}

#[tokio::test]
async fn a_discarded_create_plan_leaves_nothing_behind() {
    if !emulator_available("a_discarded_create_plan_leaves_nothing_behind") {
        return;
    }
    let stage = stage().await;
    let unit = trucking();
    let plan = stage.plan_unit_stack(&unit, &params(), None).await.unwrap();
    assert!(!plan.is_noop());
    assert!(
        plan.to_string()
            .contains("+ DatabaseSecret AWS::SecretsManager::Secret"),
        "{plan}"
    );
    stage.discard_plan(&plan).await.unwrap();
    assert!(stage.find_unit_stack(&unit).await.unwrap().is_none());
}
