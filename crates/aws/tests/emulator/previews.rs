//! Previews (change sets) of a new and an existing unit: what they show, and that nothing is
//! left behind, also when describing fails or the template is refused.

use super::support::{assert_nothing_left, RefuseDescribeChangeSet};
use crate::common::{
    account, create_trucking, emulator_available, params, stage, trucking, Clients,
    REGISTRY_PASSWORD,
};
use aws_sdk_cloudformation::config::retry::RetryConfig;
use berth_aws::{AwsError, ChangeAction, EnsureKind, PreviewKind, BUSINESS_UNIT_TEMPLATE};
use sha2::{Digest, Sha256};

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

#[tokio::test]
async fn previewing_a_new_unit_shows_the_create_and_leaves_nothing_behind() {
    if !emulator_available("previewing_a_new_unit_shows_the_create_and_leaves_nothing_behind") {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();

    let preview = stage
        .preview_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    assert_eq!(preview.stack_name, "berth-seaview--trucking");
    assert_eq!(preview.kind, PreviewKind::Create);
    let added: Vec<_> = preview
        .changes
        .iter()
        .filter(|c| c.action == ChangeAction::Add)
        .map(|c| (c.logical_id.as_str(), c.resource_type.as_str()))
        .collect();
    assert!(
        added.contains(&("DatabaseSecret", "AWS::SecretsManager::Secret"))
            && added.contains(&("S3User", "AWS::IAM::User")),
        "{preview}"
    );
    let shown = |key: &str| {
        preview
            .parameters
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    };
    // No parameter holds the password: only the version of the secret the template reads.
    assert_eq!(
        shown("RegistryPasswordVersion").map(str::len),
        Some(36),
        "{:?}",
        preview.parameters
    );
    assert!(preview.parameters.iter().all(|p| p.value != "[redacted]"));
    assert_eq!(shown("RegistryServer"), Some("registry.seaview.example"));
    assert_eq!(
        preview.template_sha256,
        hex::encode(Sha256::digest(BUSINESS_UNIT_TEMPLATE.as_bytes()))
    );
    assert_eq!(
        preview.fingerprint,
        stage.desired_fingerprint(&unit, &params(), None).unwrap()
    );
    let stored = serde_json::to_string(&preview).unwrap();
    // The password's tail: found however JSON escaped its quote.
    let tail = &REGISTRY_PASSWORD[REGISTRY_PASSWORD.find('"').unwrap() + 1..];
    assert!(
        !stored.contains(tail),
        "a secret value in the stored preview"
    );
    assert_eq!(
        serde_json::from_str::<berth_aws::StackPreview>(&stored).unwrap(),
        preview
    );

    assert_nothing_left(&clients, &preview.stack_name, true).await;
    // Nothing in the way of the build that follows the approval.
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    assert_eq!(created.kind, EnsureKind::Created);
}

#[tokio::test]
async fn previewing_an_existing_unit_shows_the_update_and_changes_nothing() {
    if !emulator_available("previewing_an_existing_unit_shows_the_update_and_changes_nothing") {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let (unit, created) = create_trucking(&stage).await;
    let stack_id = created.stack.stack_id.as_str();

    // The same inputs: nothing to do, and the empty change set is gone too.
    let same = stage
        .preview_unit_stack(&unit, &params(), Some(stack_id))
        .await
        .unwrap();
    assert_eq!(same.kind, PreviewKind::NoChanges);
    assert!(same.changes.is_empty(), "{same}");
    assert_nothing_left(&clients, &same.stack_name, false).await;

    // A changed parameter: the secret using it is modified in place.
    let mut changed = params();
    changed.registry_server = "registry2.seaview.example".into();
    let preview = stage
        .preview_unit_stack(&unit, &changed, Some(stack_id))
        .await
        .unwrap();
    assert_eq!(preview.kind, PreviewKind::Update);
    assert_eq!(preview.summary(), "update: 1 to modify");
    let [change] = preview.changes.as_slice() else {
        panic!("one change expected: {preview}")
    };
    assert_eq!(
        (change.action, change.logical_id.as_str()),
        (ChangeAction::Modify, "RegistrySecret")
    );
    assert_eq!(change.replacement.as_deref(), Some("False"));
    assert_eq!(
        change.physical_id.as_deref(),
        Some(created.outputs.registry_secret_arn.as_str())
    );
    assert_ne!(preview.fingerprint, same.fingerprint);
    assert_nothing_left(&clients, &preview.stack_name, false).await;

    // Nothing was executed.
    let found = stage.find_unit_stack(&unit).await.unwrap().unwrap();
    assert_eq!(found.stack.status, "CREATE_COMPLETE");
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.server, "registry.seaview.example");
}

#[tokio::test]
async fn a_preview_whose_change_set_cannot_be_described_leaves_nothing_behind() {
    if !emulator_available("a_preview_whose_change_set_cannot_be_described_leaves_nothing_behind") {
        return;
    }
    let account = account();
    let refusing = Clients::in_account(&account, |b| {
        b.interceptor(RefuseDescribeChangeSet)
            .retry_config(RetryConfig::disabled())
    })
    .await;
    let err = refusing
        .stage()
        .preview_unit_stack(&trucking(), &params(), None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, AwsError::Api { .. })
            && text.contains("change set arn:aws:cloudformation:")
            && text.contains("DescribeChangeSet failed")
            && text.contains("refused by the test"),
        "{text}"
    );
    let plain = Clients::in_account(&account, |b| b).await;
    assert_nothing_left(&plain, "berth-seaview--trucking", true).await;
}

#[tokio::test]
async fn a_preview_of_a_refused_template_leaves_nothing_behind() {
    if !emulator_available("a_preview_of_a_refused_template_leaves_nothing_behind") {
        return;
    }
    // One attempt: moto answers a template it cannot parse with a 500, and every retry would
    // make another review stack of the same name (real CloudFormation refuses the template).
    let no_retries =
        |b: aws_sdk_cloudformation::config::Builder| b.retry_config(RetryConfig::disabled());
    let bad_template = "Resources: [not, a, template";

    // The emulator does leave a review stack behind such a refusal, so the check below can
    // fail.
    let control = Clients::in_account(&account(), no_retries).await;
    let refused = control
        .cloudformation
        .create_change_set()
        .stack_name("control")
        .change_set_name("control")
        .change_set_type(aws_sdk_cloudformation::types::ChangeSetType::Create)
        .template_body(bad_template)
        .send()
        .await;
    assert!(refused.is_err());
    let left = control
        .cloudformation
        .describe_stacks()
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.stacks()[0].stack_status().map(|s| s.as_str()),
        Some("REVIEW_IN_PROGRESS")
    );

    let clients = Clients::in_account(&account(), no_retries).await;
    let stage = clients.stage();
    let mut desired = stage
        .desired_stack(&trucking(), &params(), None)
        .await
        .unwrap();
    desired.template_body = bad_template.into();
    let err = stage.driver().preview(&desired).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "AWS call for stack berth-seaview--trucking failed: CreateChangeSet failed"
        ),
        "{text}"
    );
    assert_nothing_left(&clients, "berth-seaview--trucking", true).await;
}
