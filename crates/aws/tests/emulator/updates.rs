//! Updates: a failed one rolls back and the stack stays usable, a failed rollback is permanent,
//! an unchanged update is a no-op.

use super::support::{assert_nothing_left, parameters_and_events};
use crate::common::{
    account, create_trucking, emulator_available, fail_next_update, params, trucking, Clients,
};
use berth_aws::{AwsError, EnsureKind};

#[tokio::test]
async fn a_failed_update_rolls_back_and_the_stack_stays_usable() {
    if !emulator_available("a_failed_update_rolls_back_and_the_stack_stays_usable") {
        return;
    }
    let account = account();
    let clients = Clients::in_account(&account, |b| b).await;
    let stage = clients.stage();
    let (unit, created) = create_trucking(&stage).await;
    let stack_id = created.stack.stack_id.as_str();
    let name = unit.stack_name();

    let reason = "Resource handler returned message: \"Access to KMS is not allowed\"";
    fail_next_update(&account, &name, "RegistrySecret", reason, "rollback").await;
    let mut changed = params();
    changed.registry_server = "registry2.seaview.example".into();
    let err = stage
        .ensure_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap_err();
    let AwsError::UpdateRolledBack {
        stack, failures, ..
    } = &err
    else {
        panic!("expected UpdateRolledBack, got {err:?}")
    };
    assert_eq!(stack, &name);
    let [failure] = failures.as_slice() else {
        panic!("one failed resource expected: {failures:?}")
    };
    assert_eq!(
        (
            failure.logical_id.as_str(),
            failure.resource_type.as_str(),
            failure.status.as_str(),
            failure.reason.as_str()
        ),
        (
            "RegistrySecret",
            "AWS::SecretsManager::Secret",
            "UPDATE_FAILED",
            reason
        )
    );
    assert!(
        err.to_string().contains("failed and was rolled back"),
        "{err}"
    );

    // Rolled back: previous parameters, previous secret value, a usable stack.
    let found = stage.find_unit_stack(&unit).await.unwrap().unwrap();
    assert_eq!(found.stack.status, "UPDATE_ROLLBACK_COMPLETE");
    let (parameters, _) = parameters_and_events(&clients, &name).await;
    assert_eq!(
        parameters.get("RegistryServer").map(String::as_str),
        Some("registry.seaview.example")
    );
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.server, "registry.seaview.example");

    // The fault was used up: the same update now goes through.
    let updated = stage
        .ensure_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap();
    assert_eq!(updated.kind, EnsureKind::Updated);
    assert_eq!(updated.stack.status, "UPDATE_COMPLETE");
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.server, "registry2.seaview.example");
}

#[tokio::test]
async fn a_failed_rollback_is_a_permanent_error_naming_the_state() {
    if !emulator_available("a_failed_rollback_is_a_permanent_error_naming_the_state") {
        return;
    }
    let account = account();
    let clients = Clients::in_account(&account, |b| b).await;
    let stage = clients.stage();
    let (unit, created) = create_trucking(&stage).await;
    let stack_id = created.stack.stack_id.as_str();
    fail_next_update(
        &account,
        &unit.stack_name(),
        "S3User",
        "Policy document is malformed",
        "rollback_failed",
    )
    .await;
    let mut changed = params();
    changed.db_username = "trucking2".into();
    let err = stage
        .ensure_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AwsError::StackNeedsAttention { status, cause: Some(cause), .. }
            if status == "UPDATE_ROLLBACK_FAILED" && cause.contains("S3User")),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    // Found again later: refused before any change set, naming the state.
    let err = stage
        .ensure_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, AwsError::StackNeedsAttention { .. })
            && text.contains("is in UPDATE_ROLLBACK_FAILED")
            && text.contains("ContinueUpdateRollback"),
        "{text}"
    );
    assert_nothing_left(&clients, &unit.stack_name(), false).await;
}

#[tokio::test]
async fn an_unchanged_update_is_a_no_op_and_a_parameter_change_an_update() {
    if !emulator_available("an_unchanged_update_is_a_no_op_and_a_parameter_change_an_update") {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    let name = unit.stack_name();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    let stack_id = created.stack.stack_id.as_str();
    let (_, events_before) = parameters_and_events(&clients, &name).await;

    // Same template, same parameters: no change set to execute, nothing happens.
    let plan = stage
        .plan_unit_stack(&unit, &params(), Some(stack_id))
        .await
        .unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(plan.summary(), "no changes");
    let applied = stage.apply_plan(&plan).await.unwrap();
    assert_eq!(applied.status, "CREATE_COMPLETE", "nothing was executed");
    let (_, events_after) = parameters_and_events(&clients, &name).await;
    assert_eq!(events_after, events_before, "no new stack events");
    assert_nothing_left(&clients, &name, false).await;

    // One parameter changed: an update, executed.
    let mut changed = params();
    changed.oauth_client_id = "seaview-trucking-2".into();
    let plan = stage
        .plan_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap();
    assert!(!plan.is_noop());
    assert_eq!(plan.kind, berth_aws::ChangeSetKind::Update);
    let touched: Vec<_> = plan.changes.iter().map(|c| c.logical_id.as_str()).collect();
    assert_eq!(touched, ["OAuthClientSecret"], "{plan}");
    let applied = stage.apply_plan(&plan).await.unwrap();
    assert_eq!(applied.status, "UPDATE_COMPLETE");
    let (parameters, events_updated) = parameters_and_events(&clients, &name).await;
    assert!(events_updated > events_after, "the update left events");
    assert_eq!(
        parameters.get("OAuthClientId").map(String::as_str),
        Some("seaview-trucking-2")
    );
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.oauth.client_id, "seaview-trucking-2");
}
