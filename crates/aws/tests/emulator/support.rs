//! What several areas' tests read or check with the raw SDK client, and a fault to inject.

use crate::common::Clients;
use aws_sdk_cloudformation::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_cloudformation::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudformation::error::BoxError;
use aws_sdk_cloudformation::types::ExecutionStatus;
use berth_aws::ChangeAction;

/// A stack's status, sorted tags and last update, read with the raw SDK client.
pub(super) async fn stack_state(
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

/// Fails every `DescribeChangeSet` before it is sent: "describing fails" after the change set
/// (and, for a CREATE, its review stack) really exists in the emulator.
#[derive(Debug)]
pub(super) struct RefuseDescribeChangeSet;

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
pub(super) async fn assert_nothing_left(clients: &Clients, stack_name: &str, gone: bool) {
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

/// The plan modifies the unit's registry secret and nothing else.
pub(super) fn assert_only_registry_secret_modified(plan: &berth_aws::StackPlan) {
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

/// The stack's parameters as (key, value), read with the raw SDK client.
pub(super) async fn stack_parameters<B: FromIterator<(String, String)>>(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> B {
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    described.stacks()[0]
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().to_owned(),
                p.parameter_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The stack's parameters and its number of events, read with the raw SDK client.
pub(super) async fn parameters_and_events(
    clients: &Clients,
    stack: &str,
) -> (std::collections::BTreeMap<String, String>, usize) {
    let cfn = &clients.cloudformation;
    let parameters = stack_parameters(cfn, stack).await;
    let events = cfn
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    (parameters, events.stack_events().len())
}
