//! The scripted stacks, change sets and events the driver's tests answer with.

use std::time::Duration;

use crate::scripted::Scripted;
use berth_aws::api::{
    ChangeSetSnapshot, ParameterValue, ResourceChange, StackEvent, StackSnapshot,
};
use berth_aws::driver::{DesiredStack, StackDriver, WaitPolicy};
use berth_aws::unit::{Tag, UnitIdentity};

pub(super) const NAME: &str = "berth-seaview-trucking";

/// `berth:company` and `berth:unit` of the unit every scripted stack belongs to.
pub(super) fn owner() -> Vec<Tag> {
    UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking")
        .unwrap()
        .owner_tags()
        .to_vec()
}

pub(super) fn stack(id: &str, status: &str) -> Option<StackSnapshot> {
    Some(StackSnapshot {
        stack_id: id.into(),
        stack_name: NAME.into(),
        status: status.into(),
        tags: owner(),
        ..Default::default()
    })
}

/// A stack of another unit (`berth:unit` = `haulage`).
pub(super) fn foreign(id: &str, name: &str, status: &str) -> Option<StackSnapshot> {
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

pub(super) fn change_set(
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

pub(super) fn change(action: &str, id: &str, replacement: Option<&str>) -> ResourceChange {
    ResourceChange {
        action: action.into(),
        logical_id: id.into(),
        resource_type: "AWS::SecretsManager::Secret".into(),
        physical_id: None,
        replacement: replacement.map(str::to_owned),
    }
}

pub(super) fn event(id: &str, ty: &str, status: &str, reason: Option<&str>) -> StackEvent {
    StackEvent {
        logical_id: id.into(),
        resource_type: ty.into(),
        status: status.into(),
        reason: reason.map(str::to_owned),
    }
}

pub(super) fn desired(known: Option<&str>) -> DesiredStack {
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

pub(super) fn fast() -> WaitPolicy {
    WaitPolicy {
        first_delay: Duration::from_nanos(1),
        max_delay: Duration::from_nanos(1),
        timeout: Duration::from_nanos(5),
    }
}

pub(super) fn driver(api: Scripted) -> StackDriver<Scripted> {
    StackDriver::new(api, fast())
}

pub(super) fn rollback_failed_events() -> Vec<StackEvent> {
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

/// CloudFormation's kind of answer to a DbUsername outside the template's AllowedPattern.
pub(super) const REFUSED: &str =
    "Parameter DbUsername failed to satisfy constraint: lower-case letter first";
