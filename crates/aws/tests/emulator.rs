//! Integration tests against the local AWS emulator; see common/mod.rs for how the emulator
//! is chosen and how tests are isolated.

mod common;

use aws_sdk_cloudformation::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_cloudformation::config::retry::RetryConfig;
use aws_sdk_cloudformation::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudformation::error::BoxError;
use aws_sdk_cloudformation::types::ExecutionStatus;
use berth_aws::{
    AwsError, ChangeAction, DeletionOutcome, EnsureKind, PreviewKind, UnitIdentity,
    BUSINESS_UNIT_TEMPLATE,
};
use common::{
    account, emulator_available, fail_next_update, params, stage, trucking, Clients,
    REGISTRY_PASSWORD,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

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
    let unit = trucking();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
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

/// A stack's status, sorted tags and last update, read with the raw SDK client.
async fn stack_state(
    cfn: &aws_sdk_cloudformation::Client,
    stack_id: &str,
) -> (
    String,
    Vec<(String, String)>,
    Option<aws_sdk_cloudformation::primitives::DateTime>,
) {
    let out = cfn
        .describe_stacks()
        .stack_name(stack_id)
        .send()
        .await
        .unwrap();
    let s = &out.stacks()[0];
    let mut tags: Vec<(String, String)> = s
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    tags.sort();
    (
        s.stack_status().unwrap().as_str().to_owned(),
        tags,
        s.last_updated_time().cloned(),
    )
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

/// Fails every `DescribeChangeSet` before it is sent: "describing fails" after the change set
/// (and, for a CREATE, its review stack) really exists in the emulator.
#[derive(Debug)]
struct RefuseDescribeChangeSet;

impl Intercept for RefuseDescribeChangeSet {
    fn name(&self) -> &'static str {
        "RefuseDescribeChangeSet"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        let action = b"Action=DescribeChangeSet&";
        if body.windows(action.len()).any(|w| w == action) {
            return Err("DescribeChangeSet refused by the test".into());
        }
        Ok(())
    }
}

/// Asserts, with the raw SDK client, that the account holds no change set but executed ones
/// (moto 5.2.5 lists every change set of the account whatever `StackName` says, and keeps
/// those it executed, also those whose execution failed) and no stack in `REVIEW_IN_PROGRESS`; with `gone`, no live stack named
/// `stack_name` either.
async fn assert_nothing_left(clients: &Clients, stack_name: &str, gone: bool) {
    let cfn = &clients.cloudformation;
    match cfn.list_change_sets().stack_name(stack_name).send().await {
        Ok(out) => {
            let left: Vec<_> = out
                .summaries()
                .iter()
                .filter(|c| {
                    !matches!(
                        c.execution_status(),
                        Some(ExecutionStatus::ExecuteComplete | ExecutionStatus::ExecuteFailed)
                    )
                })
                .map(|c| (c.stack_name(), c.change_set_name(), c.status()))
                .collect();
            assert!(left.is_empty(), "change sets left behind: {left:?}");
        }
        Err(err) => {
            let err = berth_aws::ApiError::from_sdk("ListChangeSets", err);
            assert!(err.is_stack_missing(), "{err}");
        }
    }
    let stacks = cfn.describe_stacks().send().await.unwrap();
    let live: Vec<_> = stacks
        .stacks()
        .iter()
        .map(|s| {
            (
                s.stack_name().unwrap_or_default(),
                s.stack_status().map(|x| x.as_str()).unwrap_or_default(),
            )
        })
        .filter(|(_, status)| *status != "DELETE_COMPLETE")
        .collect();
    assert!(
        !live
            .iter()
            .any(|(_, status)| *status == "REVIEW_IN_PROGRESS"),
        "review stack left behind: {live:?}"
    );
    if gone {
        assert!(
            !live.iter().any(|(name, _)| *name == stack_name),
            "stack left behind: {live:?}"
        );
    }
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
    let unit = trucking();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
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

/// The plan modifies the unit's registry secret and nothing else.
fn assert_only_registry_secret_modified(plan: &berth_aws::StackPlan) {
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
}

/// The stack's parameters and its number of events, read with the raw SDK client.
async fn parameters_and_events(
    clients: &Clients,
    stack: &str,
) -> (std::collections::BTreeMap<String, String>, usize) {
    let cfn = &clients.cloudformation;
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    let parameters = described.stacks()[0]
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().to_owned(),
                p.parameter_value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let events = cfn
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    (parameters, events.stack_events().len())
}

#[tokio::test]
async fn a_failed_update_rolls_back_and_the_stack_stays_usable() {
    if !emulator_available("a_failed_update_rolls_back_and_the_stack_stays_usable") {
        return;
    }
    let account = account();
    let clients = Clients::in_account(&account, |b| b).await;
    let stage = clients.stage();
    let unit = trucking();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
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
    let unit = trucking();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
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

#[tokio::test]
async fn decommissioning_deletes_once_schedules_the_secrets_and_proves_it() {
    if !emulator_available("decommissioning_deletes_once_schedules_the_secrets_and_proves_it") {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    // A neighbour whose slug starts like ours: none of this may touch it.
    let neighbour =
        UnitIdentity::parse("seaview", "SeaView", "trucking-2", "Trucking Two").unwrap();
    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    let other = stage
        .ensure_unit_stack(&neighbour, &params(), None)
        .await
        .unwrap();

    // The plan: what the deletion keeps, from the template.
    let retained = stage.retained_resources().unwrap();
    let kept: Vec<_> = retained.iter().map(|r| r.logical_id.as_str()).collect();
    assert!(
        kept.contains(&"DataBucket") && kept.contains(&"DatabaseSecret"),
        "{kept:?}"
    );
    assert!(!kept.contains(&"S3User"), "{kept:?}");

    // Secrets are not scheduled while the stack uses them; bad windows are refused.
    let err = stage
        .schedule_unit_secret_deletion(&unit, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::Precondition(_)), "{err:?}");
    for days in [0, 6, 31] {
        assert!(matches!(
            stage.schedule_unit_secret_deletion(&unit, days).await,
            Err(AwsError::InvalidInput(_))
        ));
    }

    // Delete, once.
    let deletion = stage.delete_unit_stack(&unit).await.unwrap();
    assert!(deletion.deleted_now(), "{deletion:?}");
    let again = stage.delete_unit_stack(&unit).await.unwrap();
    assert_eq!(again.outcome, DeletionOutcome::AlreadyGone);
    assert!(!again.deleted_now());

    // Not proven yet: the retained secrets are live.
    let proof = stage.prove_unit_removed(&unit).await.unwrap();
    assert!(!proof.passed, "{proof:?}");
    let failed: Vec<_> = proof.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed.contains(&"secret berth/seaview/trucking/database scheduled for deletion"),
        "{failed:?}"
    );
    assert!(proof.checks[0].passed, "{:?}", proof.checks[0]);

    // Schedule: every secret of the unit, with the window asked for.
    let scheduled = stage.schedule_unit_secret_deletion(&unit, 7).await.unwrap();
    let names: Vec<_> = scheduled.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "berth/seaview/trucking/database",
            "berth/seaview/trucking/oauth-client",
            "berth/seaview/trucking/registry",
            "berth/seaview/trucking/s3",
        ]
    );
    assert!(scheduled.iter().all(|s| s.scheduled_now), "{scheduled:?}");
    let in_a_week = std::time::SystemTime::now() + std::time::Duration::from_secs(7 * 86_400);
    let expected_day = aws_sdk_secretsmanager::primitives::DateTime::from(in_a_week)
        .fmt(aws_sdk_secretsmanager::primitives::DateTimeFormat::DateTime)
        .unwrap();
    assert!(
        scheduled
            .iter()
            .all(|s| s.deletion_date[..10] == expected_day[..10]),
        "deletion dates {scheduled:?}, expected the day {expected_day}"
    );
    assert!(stage.read_unit_secrets(&created.outputs).await.is_err());

    // A repeat changes nothing.
    let repeat = stage
        .schedule_unit_secret_deletion(&unit, 30)
        .await
        .unwrap();
    assert!(repeat.iter().all(|s| !s.scheduled_now), "{repeat:?}");
    let dates = |list: &[berth_aws::ScheduledSecret]| {
        list.iter()
            .map(|s| (s.arn.clone(), s.deletion_date.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(dates(&repeat), dates(&scheduled));

    // Proven, and the proof is an event payload.
    let proof = stage.prove_unit_removed(&unit).await.unwrap();
    assert!(proof.passed, "{proof:?}");
    assert_eq!(dates(&proof.secrets), dates(&scheduled));
    let json = serde_json::to_value(&proof).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["checks"].as_array().unwrap().len(), 2 + 4);
    assert!(json["retained"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["logical_id"] == "DataBucket"));

    // The neighbour is untouched.
    assert!(stage.read_unit_secrets(&other.outputs).await.is_ok());
    assert!(stage.find_unit_stack(&neighbour).await.unwrap().is_some());
    let neighbour_proof = stage.prove_unit_removed(&neighbour).await.unwrap();
    assert!(!neighbour_proof.passed);
}

/// The registry password never travels as a stack parameter: Berth keeps it in the company's
/// secret and the template reads it by a dynamic reference pinned to a version id. Neither
/// the stack's parameters (DescribeStacks) nor its template (GetTemplate) hold it, the unit's
/// registry secret does, and a rotated password reaches that secret on the next update.
#[tokio::test]
async fn the_registry_password_reaches_the_unit_secret_by_reference_never_as_a_parameter() {
    if !emulator_available(
        "the_registry_password_reaches_the_unit_secret_by_reference_never_as_a_parameter",
    ) {
        return;
    }
    let clients = Clients::new().await;
    let stage = clients.stage();
    let unit = trucking();
    // Searched for as is, JSON-escaped, and by its tail (however often its quote was escaped).
    let tail = |password: &str| password[password.find('"').unwrap() + 1..].to_owned();
    let leaks = |text: &str, password: &str| {
        text.contains(password)
            || text.contains(&password.replace('"', "\\\""))
            || text.contains(&tail(password))
    };
    // What CloudFormation holds of the stack: its parameters and its template.
    let stack_text = |stack_id: String| {
        let cfn = clients.cloudformation.clone();
        async move {
            let described = cfn
                .describe_stacks()
                .stack_name(&stack_id)
                .send()
                .await
                .unwrap();
            let parameters: Vec<(String, String)> = described.stacks()[0]
                .parameters()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap_or_default().to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let template = cfn
                .get_template()
                .stack_name(&stack_id)
                .send()
                .await
                .unwrap()
                .template_body()
                .unwrap_or_default()
                .to_owned();
            (parameters, template)
        }
    };
    let version_of = |parameters: &[(String, String)]| {
        parameters
            .iter()
            .find(|(k, _)| k == "RegistryPasswordVersion")
            .map(|(_, v)| v.clone())
            .expect("the version parameter")
    };

    let created = stage
        .ensure_unit_stack(&unit, &params(), None)
        .await
        .unwrap();
    let (parameters, template) = stack_text(created.stack.stack_id.clone()).await;
    assert!(
        !leaks(&format!("{parameters:?}"), REGISTRY_PASSWORD),
        "the password is a stack parameter"
    );
    assert!(
        !leaks(&template, REGISTRY_PASSWORD),
        "the password is in the template"
    );
    assert!(template.contains(
        "{{resolve:secretsmanager:berth/${CompanySlug}/registry-password:SecretString:password_json::${RegistryPasswordVersion}}}"
    ));
    let first_version = version_of(&parameters);
    let source = clients
        .secretsmanager
        .describe_secret()
        .secret_id("berth/seaview/registry-password")
        .send()
        .await
        .unwrap();
    assert!(
        source
            .version_ids_to_stages()
            .and_then(|v| v.get(&first_version))
            .is_some_and(|stages| stages.iter().any(|s| s == "AWSCURRENT")),
        "the stack reads the company secret's current version"
    );
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.password.expose(), REGISTRY_PASSWORD);

    // The same password again: no new version, nothing to update.
    let again = stage
        .ensure_unit_stack(&unit, &params(), Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_eq!(again.kind, EnsureKind::Unchanged);

    // Rotation: a new version of the company's secret, and the update reads it.
    let rotated_password = "Rotated\"pull-Secret-93ab";
    let mut rotated = params();
    rotated.registry_password = SecretString::from(rotated_password.to_owned());
    let plan = stage
        .plan_unit_stack(&unit, &rotated, Some(&created.stack.stack_id))
        .await
        .unwrap();
    assert_only_registry_secret_modified(&plan);
    stage.apply_plan(&plan).await.unwrap();
    let (parameters, template) = stack_text(created.stack.stack_id.clone()).await;
    let text = format!("{parameters:?} {template}");
    assert!(!leaks(&text, REGISTRY_PASSWORD) && !leaks(&text, rotated_password));
    assert_ne!(version_of(&parameters), first_version);
    let secrets = stage.read_unit_secrets(&created.outputs).await.unwrap();
    assert_eq!(secrets.registry.password.expose(), rotated_password);
    assert_eq!(
        stage.desired_fingerprint(&unit, &rotated, None).unwrap(),
        stage.desired_fingerprint(&unit, &params(), None).unwrap(),
        "a rotated password does not void an approval"
    );
}
