//! The stack state machine: plan through a change set, execute, wait, recover.
//!
//! Everything here goes through [`CloudFormationApi`], so the paths no emulator can produce
//! (rollbacks, long in-progress states, failure events) are unit-tested with scripts below.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::api::{
    ChangeSetKind, ChangeSetRequest, ChangeSetSnapshot, CloudFormationApi, ParameterValue,
    ResourceChange, StackEvent, StackResource, StackSnapshot,
};
use crate::error::{AwsError, Result};
use crate::status::{attention_hint, phase, Phase};
use crate::unit::Tag;

/// How long and how often to poll: exponential backoff from `first_delay` (×2) up to
/// `max_delay`, giving up once the delays add up to `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            // Secrets and IAM users take minutes at most; a stuck stack should not block a
            // pipeline worker for longer.
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

struct Backoff {
    policy: WaitPolicy,
    next: Duration,
    waited: Duration,
}

impl Backoff {
    fn new(policy: WaitPolicy) -> Self {
        Self {
            policy,
            next: policy.first_delay,
            waited: Duration::ZERO,
        }
    }

    /// Sleeps for the next delay; `false` when the budget is spent.
    async fn pause(&mut self) -> bool {
        if self.waited >= self.policy.timeout {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.waited += self.next;
        self.next = (self.next * 2).min(self.policy.max_delay);
        true
    }
}

/// What the stack should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStack {
    pub stack_name: String,
    pub template_body: String,
    pub parameters: Vec<(String, ParameterValue)>,
    pub tags: Vec<Tag>,
    /// The id Berth recorded when it created the stack. When set and the stack is gone,
    /// [`StackDriver::plan`] reports [`AwsError::StackVanished`] instead of recreating it.
    pub known_stack_id: Option<String>,
}

/// One line of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Add,
    Modify,
    /// Modified by replacing the resource (new physical id; a secret gets a new ARN).
    Replace,
    /// Modified; replacement depends on values known only during the update.
    MaybeReplace,
    Remove,
    Other,
}

/// One resource change of a plan, as approvers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub action: ChangeAction,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
}

impl From<&ResourceChange> for PlannedChange {
    fn from(change: &ResourceChange) -> Self {
        let action = match (change.action.as_str(), change.replacement.as_deref()) {
            ("Add", _) => ChangeAction::Add,
            ("Remove", _) => ChangeAction::Remove,
            ("Modify", Some("True")) => ChangeAction::Replace,
            ("Modify", Some("Conditional")) => ChangeAction::MaybeReplace,
            ("Modify", _) => ChangeAction::Modify,
            _ => ChangeAction::Other,
        };
        Self {
            action,
            logical_id: change.logical_id.clone(),
            resource_type: change.resource_type.clone(),
            physical_id: change.physical_id.clone(),
        }
    }
}

/// A readable plan backed by a change set (none when there is nothing to do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPlan {
    pub stack_name: String,
    pub stack_id: String,
    pub kind: ChangeSetKind,
    /// `None` when the stack already matches: nothing to execute.
    pub change_set_id: Option<String>,
    pub changes: Vec<PlannedChange>,
}

impl StackPlan {
    pub fn is_noop(&self) -> bool {
        self.change_set_id.is_none()
    }

    pub fn count(&self, action: ChangeAction) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// One line such as "update: 1 to modify, 1 to replace".
    pub fn summary(&self) -> String {
        if self.is_noop() {
            return "no changes".into();
        }
        let verb = match self.kind {
            ChangeSetKind::Create => "create",
            ChangeSetKind::Update => "update",
        };
        let parts: Vec<String> = [
            (ChangeAction::Add, "to add"),
            (ChangeAction::Modify, "to modify"),
            (ChangeAction::Replace, "to replace"),
            (ChangeAction::MaybeReplace, "to modify, maybe replace"),
            (ChangeAction::Remove, "to remove"),
            (ChangeAction::Other, "other"),
        ]
        .iter()
        .filter_map(|(action, label)| {
            let n = self.count(*action);
            (n > 0).then(|| format!("{n} {label}"))
        })
        .collect();
        if parts.is_empty() {
            format!("{verb}: parameters only")
        } else {
            format!("{verb}: {}", parts.join(", "))
        }
    }
}

impl fmt::Display for StackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack {}: {}", self.stack_name, self.summary())?;
        for change in &self.changes {
            let (sign, note) = match change.action {
                ChangeAction::Add => ('+', ""),
                ChangeAction::Modify => ('~', ""),
                ChangeAction::Replace => ('±', " (replaced)"),
                ChangeAction::MaybeReplace => ('~', " (may be replaced)"),
                ChangeAction::Remove => ('-', ""),
                ChangeAction::Other => ('?', ""),
            };
            write!(
                f,
                "\n  {sign} {} {}{note}",
                change.logical_id, change.resource_type
            )?;
        }
        Ok(())
    }
}

/// The result of [`StackDriver::ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureOutcome {
    Created {
        stack: StackSnapshot,
        plan: StackPlan,
    },
    Updated {
        stack: StackSnapshot,
        plan: StackPlan,
    },
    Unchanged {
        stack: StackSnapshot,
    },
}

impl EnsureOutcome {
    pub fn stack(&self) -> &StackSnapshot {
        match self {
            EnsureOutcome::Created { stack, .. }
            | EnsureOutcome::Updated { stack, .. }
            | EnsureOutcome::Unchanged { stack } => stack,
        }
    }
}

fn unique_suffix() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Turns the events of the last operation into a short message naming resources and reasons,
/// root cause first.
pub fn summarize_failure(
    stack_name: &str,
    events: &[StackEvent],
    fallback: Option<&str>,
) -> String {
    // Events are newest first; the operation began at the stack's "User Initiated" event.
    let mut operation = Vec::new();
    for event in events {
        let is_start = event.logical_id == stack_name
            && event.status.ends_with("_IN_PROGRESS")
            && event.reason.as_deref() == Some("User Initiated");
        if is_start {
            break;
        }
        operation.push(event);
    }
    operation.reverse();
    let failures: Vec<String> = operation
        .iter()
        .filter(|e| e.status.ends_with("_FAILED") && e.logical_id != stack_name)
        .filter(|e| {
            let reason = e.reason.as_deref().unwrap_or_default();
            !reason.contains("cancelled")
        })
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    match failures.len() {
        0 => operation
            .iter()
            .rev()
            .find_map(|e| {
                (e.logical_id == stack_name)
                    .then_some(e.reason.as_deref())
                    .flatten()
            })
            .or(fallback)
            .unwrap_or("no failure reason in the stack events")
            .to_owned(),
        1..=3 => failures.join("; "),
        n => format!("{}; and {} more", failures[..3].join("; "), n - 3),
    }
}

/// Drives one stack through CloudFormation.
#[derive(Debug, Clone)]
pub struct StackDriver<A> {
    api: A,
    wait: WaitPolicy,
}

impl<A: CloudFormationApi> StackDriver<A> {
    pub fn new(api: A, wait: WaitPolicy) -> Self {
        Self { api, wait }
    }

    pub fn api(&self) -> &A {
        &self.api
    }

    async fn describe(&self, name_or_id: &str) -> Result<Option<StackSnapshot>> {
        self.api
            .describe_stack(name_or_id)
            .await
            .map_err(|e| AwsError::api(format!("stack {name_or_id}"), e))
    }

    /// Polls until the stack leaves every `*_IN_PROGRESS` state (except review).
    #[tracing::instrument(skip_all, fields(stack = %stack_id))]
    pub async fn wait_until_settled(&self, stack_id: &str) -> Result<Option<StackSnapshot>> {
        let mut backoff = Backoff::new(self.wait);
        loop {
            let snapshot = self.describe(stack_id).await?;
            match &snapshot {
                Some(s) if phase(&s.status) == Phase::InProgress => {
                    tracing::debug!(status = %s.status, "stack busy, waiting");
                    if !backoff.pause().await {
                        return Err(AwsError::WaitTimeout {
                            stack: s.stack_name.clone(),
                            status: s.status.clone(),
                            waited: backoff.waited,
                        });
                    }
                }
                _ => return Ok(snapshot),
            }
        }
    }

    async fn failure(&self, stack: &StackSnapshot) -> AwsError {
        let summary = match self.api.recent_events(&stack.stack_id).await {
            Ok(events) => {
                summarize_failure(&stack.stack_name, &events, stack.status_reason.as_deref())
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read stack events");
                stack
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "stack events unavailable".into())
            }
        };
        AwsError::StackFailed {
            stack: stack.stack_name.clone(),
            status: stack.status.clone(),
            summary,
        }
    }

    /// Deletes a stack and waits until it is gone.
    #[tracing::instrument(skip_all, fields(stack = %stack_id))]
    pub async fn delete(&self, stack_id: &str) -> Result<()> {
        let token = format!("berth-delete-{}", unique_suffix());
        self.api
            .delete_stack(stack_id, &token)
            .await
            .map_err(|e| AwsError::api(format!("stack {stack_id}"), e))?;
        match self.wait_until_settled(stack_id).await? {
            None => Ok(()),
            Some(s) if phase(&s.status) == Phase::Deleted => Ok(()),
            Some(s) => Err(self.failure(&s).await),
        }
    }

    /// The live stack to plan against, after waiting out running operations and clearing a
    /// failed first create.
    async fn current(&self, desired: &DesiredStack) -> Result<Option<StackSnapshot>> {
        let target = desired
            .known_stack_id
            .as_deref()
            .unwrap_or(&desired.stack_name);
        // Each round either returns or moves the stack forward (wait or delete).
        for _ in 0..4 {
            let snapshot = self.describe(target).await?;
            let Some(stack) = snapshot else {
                return match &desired.known_stack_id {
                    Some(id) => Err(AwsError::StackVanished {
                        stack_id: id.clone(),
                    }),
                    None => Ok(None),
                };
            };
            match phase(&stack.status) {
                Phase::InProgress => {
                    tracing::info!(status = %stack.status, "stack busy, waiting before planning");
                    self.wait_until_settled(&stack.stack_id).await?;
                }
                Phase::Deleted => {
                    return match &desired.known_stack_id {
                        Some(id) => Err(AwsError::StackVanished {
                            stack_id: id.clone(),
                        }),
                        None => Ok(None),
                    };
                }
                Phase::FailedCreate => {
                    let cause = self.failure(&stack).await;
                    tracing::warn!(status = %stack.status, cause = %cause, "deleting stack of a failed create before recreating it");
                    self.delete(&stack.stack_id).await?;
                    return Ok(None);
                }
                Phase::NeedsAttention => {
                    return Err(AwsError::StackNeedsAttention {
                        stack: stack.stack_name.clone(),
                        status: stack.status.clone(),
                        hint: attention_hint(&stack.status).into(),
                    });
                }
                Phase::Review | Phase::Stable | Phase::UpdateRolledBack => return Ok(Some(stack)),
            }
        }
        Err(AwsError::StackNeedsAttention {
            stack: desired.stack_name.clone(),
            status: "changing".into(),
            hint: "the stack kept changing while Berth waited; another tool may be operating on it"
                .into(),
        })
    }

    async fn wait_change_set(&self, change_set_id: &str) -> Result<ChangeSetSnapshot> {
        let mut backoff = Backoff::new(self.wait);
        loop {
            let snapshot = self
                .api
                .describe_change_set(change_set_id)
                .await
                .map_err(|e| AwsError::api(format!("change set {change_set_id}"), e))?;
            if !matches!(
                snapshot.status.as_str(),
                "CREATE_PENDING" | "CREATE_IN_PROGRESS"
            ) {
                return Ok(snapshot);
            }
            if !backoff.pause().await {
                return Err(AwsError::WaitTimeout {
                    stack: snapshot.stack_id,
                    status: format!("change set {}", snapshot.status),
                    waited: backoff.waited,
                });
            }
        }
    }

    /// Creates a change set towards `desired` and describes it. Nothing is executed; a plan
    /// with no changes has no change set left behind.
    #[tracing::instrument(skip_all, fields(stack = %desired.stack_name))]
    pub async fn plan(&self, desired: &DesiredStack) -> Result<StackPlan> {
        let current = self.current(desired).await?;
        let kind = match &current {
            Some(s) if phase(&s.status) != Phase::Review => ChangeSetKind::Update,
            _ => ChangeSetKind::Create,
        };
        let request = ChangeSetRequest {
            stack_name: desired.stack_name.clone(),
            change_set_name: format!("berth-{}", unique_suffix()),
            kind,
            template_body: desired.template_body.clone(),
            parameters: desired.parameters.clone(),
            tags: desired.tags.clone(),
            description: Some("Planned by Berth".into()),
        };
        let stack_label = format!("stack {}", desired.stack_name);
        let (change_set_id, stack_id) = match self.api.create_change_set(&request).await {
            Ok(ids) => ids,
            Err(err) if is_no_changes(&err.message) => {
                let stack_id = current.map(|s| s.stack_id).unwrap_or_default();
                return Ok(StackPlan {
                    stack_name: desired.stack_name.clone(),
                    stack_id,
                    kind,
                    change_set_id: None,
                    changes: Vec::new(),
                });
            }
            Err(err) => return Err(AwsError::api(stack_label, err)),
        };
        tracing::info!(change_set = %change_set_id, ?kind, "change set created");
        let described = self.wait_change_set(&change_set_id).await?;
        if described.status != "CREATE_COMPLETE" {
            let reason = described.status_reason.unwrap_or_default();
            if is_no_changes(&reason) {
                if let Err(err) = self.api.delete_change_set(&change_set_id).await {
                    tracing::warn!(error = %err, "could not delete the empty change set");
                }
                tracing::info!("stack already matches, nothing to do");
                return Ok(StackPlan {
                    stack_name: desired.stack_name.clone(),
                    stack_id,
                    kind,
                    change_set_id: None,
                    changes: Vec::new(),
                });
            }
            return Err(AwsError::ChangeSetFailed {
                stack: desired.stack_name.clone(),
                change_set: change_set_id,
                reason,
            });
        }
        Ok(StackPlan {
            stack_name: desired.stack_name.clone(),
            stack_id: if described.stack_id.is_empty() {
                stack_id
            } else {
                described.stack_id
            },
            kind,
            change_set_id: Some(change_set_id),
            changes: described.changes.iter().map(PlannedChange::from).collect(),
        })
    }

    /// Executes a plan and waits until the stack settles; failures come back summarised
    /// from the stack events.
    #[tracing::instrument(skip_all, fields(stack = %plan.stack_name))]
    pub async fn apply(&self, plan: &StackPlan) -> Result<StackSnapshot> {
        let label = format!("stack {}", plan.stack_name);
        let Some(change_set_id) = &plan.change_set_id else {
            return self
                .describe(&plan.stack_id)
                .await?
                .ok_or_else(|| AwsError::StackVanished {
                    stack_id: plan.stack_id.clone(),
                });
        };
        let token = format!("berth-exec-{}", unique_suffix());
        self.api
            .execute_change_set(change_set_id, &token)
            .await
            .map_err(|e| AwsError::api(label, e))?;
        tracing::info!(change_set = %change_set_id, "change set executing");
        let settled = self
            .wait_until_settled(&plan.stack_id)
            .await?
            .ok_or_else(|| AwsError::StackVanished {
                stack_id: plan.stack_id.clone(),
            })?;
        let ok = match plan.kind {
            ChangeSetKind::Create => settled.status == "CREATE_COMPLETE",
            ChangeSetKind::Update => settled.status == "UPDATE_COMPLETE",
        };
        if ok {
            tracing::info!(status = %settled.status, "stack settled");
            Ok(settled)
        } else {
            Err(self.failure(&settled).await)
        }
    }

    /// Throws a plan away: deletes its change set, and the empty stack a CREATE plan made.
    pub async fn discard(&self, plan: &StackPlan) -> Result<()> {
        let Some(change_set_id) = &plan.change_set_id else {
            return Ok(());
        };
        self.api
            .delete_change_set(change_set_id)
            .await
            .map_err(|e| AwsError::api(format!("change set {change_set_id}"), e))?;
        if plan.kind == ChangeSetKind::Create {
            if let Some(stack) = self.describe(&plan.stack_id).await? {
                if phase(&stack.status) == Phase::Review {
                    self.delete(&stack.stack_id).await?;
                }
            }
        }
        Ok(())
    }

    /// Idempotent step: bring the stack to `desired` (plan, then apply when needed).
    pub async fn ensure(&self, desired: &DesiredStack) -> Result<EnsureOutcome> {
        let plan = self.plan(desired).await?;
        if plan.is_noop() {
            let stack =
                self.describe(&plan.stack_id)
                    .await?
                    .ok_or_else(|| AwsError::StackVanished {
                        stack_id: plan.stack_id.clone(),
                    })?;
            return Ok(EnsureOutcome::Unchanged { stack });
        }
        let stack = self.apply(&plan).await?;
        Ok(match plan.kind {
            ChangeSetKind::Create => EnsureOutcome::Created { stack, plan },
            ChangeSetKind::Update => EnsureOutcome::Updated { stack, plan },
        })
    }

    /// Finds the one live stack carrying `tag` by paginating `DescribeStacks`.
    #[tracing::instrument(skip_all, fields(tag = %tag))]
    pub async fn find_by_tag(&self, tag: &Tag) -> Result<Option<StackSnapshot>> {
        let mut found: Option<StackSnapshot> = None;
        let mut token = None;
        loop {
            let (stacks, next) = self
                .api
                .list_stacks_page(token)
                .await
                .map_err(|e| AwsError::api(format!("stacks tagged {tag}"), e))?;
            for stack in stacks {
                if phase(&stack.status) == Phase::Deleted || !stack.tags.contains(tag) {
                    continue;
                }
                if let Some(first) = &found {
                    return Err(AwsError::AmbiguousStacks {
                        tag: tag.to_string(),
                        first: format!("{} ({})", first.stack_name, first.stack_id),
                        second: format!("{} ({})", stack.stack_name, stack.stack_id),
                    });
                }
                found = Some(stack);
            }
            token = next;
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    pub async fn resources(&self, stack_id: &str) -> Result<Vec<StackResource>> {
        self.api
            .list_resources(stack_id)
            .await
            .map_err(|e| AwsError::api(format!("stack {stack_id}"), e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::error::ApiError;

    /// Answers each call from a script and records every call.
    #[derive(Default)]
    struct Scripted {
        describe: Mutex<VecDeque<std::result::Result<Option<StackSnapshot>, ApiError>>>,
        pages: Mutex<VecDeque<(Vec<StackSnapshot>, Option<String>)>>,
        events: Mutex<Vec<StackEvent>>,
        create: Mutex<VecDeque<std::result::Result<(String, String), ApiError>>>,
        change_sets: Mutex<VecDeque<ChangeSetSnapshot>>,
        calls: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn describes(self, items: Vec<Option<StackSnapshot>>) -> Self {
            self.describe
                .lock()
                .unwrap()
                .extend(items.into_iter().map(Ok));
            self
        }
        fn creates(self, item: std::result::Result<(String, String), ApiError>) -> Self {
            self.create.lock().unwrap().push_back(item);
            self
        }
        fn change_set(self, item: ChangeSetSnapshot) -> Self {
            self.change_sets.lock().unwrap().push_back(item);
            self
        }
        fn with_events(self, events: Vec<StackEvent>) -> Self {
            *self.events.lock().unwrap() = events;
            self
        }
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl CloudFormationApi for Scripted {
        async fn describe_stack(
            &self,
            name_or_id: &str,
        ) -> std::result::Result<Option<StackSnapshot>, ApiError> {
            self.log(format!("describe {name_or_id}"));
            self.describe
                .lock()
                .unwrap()
                .pop_front()
                .expect("script has no more DescribeStacks answers")
        }
        async fn list_stacks_page(
            &self,
            next_token: Option<String>,
        ) -> std::result::Result<(Vec<StackSnapshot>, Option<String>), ApiError> {
            self.log(format!("list {next_token:?}"));
            Ok(self.pages.lock().unwrap().pop_front().expect("no page"))
        }
        async fn recent_events(
            &self,
            stack_id: &str,
        ) -> std::result::Result<Vec<StackEvent>, ApiError> {
            self.log(format!("events {stack_id}"));
            Ok(self.events.lock().unwrap().clone())
        }
        async fn list_resources(
            &self,
            _stack_id: &str,
        ) -> std::result::Result<Vec<StackResource>, ApiError> {
            Ok(Vec::new())
        }
        async fn create_change_set(
            &self,
            request: &ChangeSetRequest,
        ) -> std::result::Result<(String, String), ApiError> {
            self.log(format!("create_change_set {:?}", request.kind));
            self.create
                .lock()
                .unwrap()
                .pop_front()
                .expect("no create answer")
        }
        async fn describe_change_set(
            &self,
            change_set_id: &str,
        ) -> std::result::Result<ChangeSetSnapshot, ApiError> {
            self.log(format!("describe_change_set {change_set_id}"));
            Ok(self
                .change_sets
                .lock()
                .unwrap()
                .pop_front()
                .expect("no change set answer"))
        }
        async fn execute_change_set(
            &self,
            change_set_id: &str,
            _token: &str,
        ) -> std::result::Result<(), ApiError> {
            self.log(format!("execute {change_set_id}"));
            Ok(())
        }
        async fn delete_change_set(
            &self,
            change_set_id: &str,
        ) -> std::result::Result<(), ApiError> {
            self.log(format!("delete_change_set {change_set_id}"));
            Ok(())
        }
        async fn delete_stack(
            &self,
            stack_id: &str,
            _token: &str,
        ) -> std::result::Result<(), ApiError> {
            self.log(format!("delete_stack {stack_id}"));
            Ok(())
        }
    }

    const NAME: &str = "berth-seaview-trucking";

    fn stack(id: &str, status: &str) -> Option<StackSnapshot> {
        Some(StackSnapshot {
            stack_id: id.into(),
            stack_name: NAME.into(),
            status: status.into(),
            ..Default::default()
        })
    }

    fn change_set(
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

    fn change(action: &str, id: &str, replacement: Option<&str>) -> ResourceChange {
        ResourceChange {
            action: action.into(),
            logical_id: id.into(),
            resource_type: "AWS::SecretsManager::Secret".into(),
            physical_id: None,
            replacement: replacement.map(str::to_owned),
        }
    }

    fn event(id: &str, ty: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            logical_id: id.into(),
            resource_type: ty.into(),
            status: status.into(),
            reason: reason.map(str::to_owned),
        }
    }

    fn desired(known: Option<&str>) -> DesiredStack {
        DesiredStack {
            stack_name: NAME.into(),
            template_body: "{}".into(),
            parameters: vec![(
                "Secret".into(),
                ParameterValue::Secret("hunter2".to_owned().into()),
            )],
            tags: vec![],
            known_stack_id: known.map(str::to_owned),
        }
    }

    fn fast() -> WaitPolicy {
        WaitPolicy {
            first_delay: Duration::from_nanos(1),
            max_delay: Duration::from_nanos(1),
            timeout: Duration::from_nanos(5),
        }
    }

    fn driver(api: Scripted) -> StackDriver<Scripted> {
        StackDriver::new(api, fast())
    }

    #[tokio::test]
    async fn creates_a_missing_stack_and_waits_through_in_progress() {
        let d = driver(
            Scripted::default()
                .describes(vec![
                    None,
                    stack("id-1", "CREATE_IN_PROGRESS"),
                    stack("id-1", "CREATE_IN_PROGRESS"),
                    stack("id-1", "CREATE_COMPLETE"),
                ])
                .creates(Ok(("cs-1".into(), "id-1".into())))
                .change_set(change_set("CREATE_PENDING", None, vec![]))
                .change_set(change_set(
                    "CREATE_COMPLETE",
                    None,
                    vec![change("Add", "DatabaseSecret", None)],
                )),
        );
        let outcome = d.ensure(&desired(None)).await.unwrap();
        let EnsureOutcome::Created { stack, plan } = outcome else {
            panic!("expected Created, got {outcome:?}")
        };
        assert_eq!(stack.status, "CREATE_COMPLETE");
        assert_eq!(plan.summary(), "create: 1 to add");
        assert!(d
            .api()
            .calls()
            .contains(&"create_change_set Create".to_string()));
        assert!(d.api().calls().contains(&"execute cs-1".to_string()));
    }

    #[tokio::test]
    async fn no_changes_is_success_and_leaves_no_change_set() {
        let d = driver(
            Scripted::default()
                .describes(vec![stack("id-1", "UPDATE_COMPLETE"), stack("id-1", "UPDATE_COMPLETE")])
                .creates(Ok(("cs-1".into(), "id-1".into())))
                .change_set(change_set(
                    "FAILED",
                    Some("The submitted information didn't contain changes. Submit different information to create a change set."),
                    vec![],
                )),
        );
        let outcome = d.ensure(&desired(None)).await.unwrap();
        assert!(
            matches!(outcome, EnsureOutcome::Unchanged { .. }),
            "{outcome:?}"
        );
        let calls = d.api().calls();
        assert!(calls.contains(&"delete_change_set cs-1".to_string()));
        assert!(!calls.iter().any(|c| c.starts_with("execute")));
    }

    #[tokio::test]
    async fn no_updates_error_from_the_api_is_success_too() {
        let d = driver(
            Scripted::default()
                .describes(vec![
                    stack("id-1", "CREATE_COMPLETE"),
                    stack("id-1", "CREATE_COMPLETE"),
                ])
                .creates(Err(ApiError::new(
                    "CreateChangeSet",
                    Some("ValidationError"),
                    "No updates are to be performed.",
                ))),
        );
        assert!(matches!(
            d.ensure(&desired(None)).await.unwrap(),
            EnsureOutcome::Unchanged { .. }
        ));
    }

    #[tokio::test]
    async fn rollback_complete_is_deleted_then_recreated() {
        let d = driver(
            Scripted::default()
                .describes(vec![
                    stack("old", "ROLLBACK_COMPLETE"),
                    stack("old", "DELETE_IN_PROGRESS"),
                    stack("old", "DELETE_COMPLETE"),
                    stack("new", "CREATE_COMPLETE"),
                ])
                .with_events(vec![event(
                    NAME,
                    "AWS::CloudFormation::Stack",
                    "ROLLBACK_COMPLETE",
                    None,
                )])
                .creates(Ok(("cs-1".into(), "new".into())))
                .change_set(change_set(
                    "CREATE_COMPLETE",
                    None,
                    vec![change("Add", "DatabaseSecret", None)],
                )),
        );
        let outcome = d.ensure(&desired(None)).await.unwrap();
        assert!(
            matches!(outcome, EnsureOutcome::Created { .. }),
            "{outcome:?}"
        );
        let calls = d.api().calls();
        let delete = calls
            .iter()
            .position(|c| c == "delete_stack old")
            .expect("old stack deleted");
        let create = calls
            .iter()
            .position(|c| c == "create_change_set Create")
            .unwrap();
        assert!(delete < create, "{calls:?}");
    }

    #[tokio::test]
    async fn failed_create_names_resource_and_reason() {
        let events = vec![
            event(
                NAME,
                "AWS::CloudFormation::Stack",
                "ROLLBACK_COMPLETE",
                None,
            ),
            event(
                "DatabaseSecret",
                "AWS::SecretsManager::Secret",
                "DELETE_COMPLETE",
                None,
            ),
            event(
                NAME,
                "AWS::CloudFormation::Stack",
                "ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to create: [S3User]."),
            ),
            event(
                "DatabaseSecret",
                "AWS::SecretsManager::Secret",
                "CREATE_FAILED",
                Some("Resource creation cancelled"),
            ),
            event(
                "S3User",
                "AWS::IAM::User",
                "CREATE_FAILED",
                Some(
                    "User: arn:aws:iam::1:user/berth is not authorized to perform: iam:CreateUser",
                ),
            ),
            event("S3User", "AWS::IAM::User", "CREATE_IN_PROGRESS", None),
            event(
                NAME,
                "AWS::CloudFormation::Stack",
                "CREATE_IN_PROGRESS",
                Some("User Initiated"),
            ),
            event(
                "Older",
                "AWS::IAM::User",
                "CREATE_FAILED",
                Some("from a previous attempt"),
            ),
        ];
        let d = driver(
            Scripted::default()
                .describes(vec![
                    None,
                    stack("id-1", "ROLLBACK_IN_PROGRESS"),
                    stack("id-1", "ROLLBACK_COMPLETE"),
                ])
                .with_events(events)
                .creates(Ok(("cs-1".into(), "id-1".into())))
                .change_set(change_set(
                    "CREATE_COMPLETE",
                    None,
                    vec![change("Add", "S3User", None)],
                )),
        );
        let err = d.ensure(&desired(None)).await.unwrap_err();
        let AwsError::StackFailed {
            status, summary, ..
        } = &err
        else {
            panic!("expected StackFailed, got {err:?}")
        };
        assert_eq!(status, "ROLLBACK_COMPLETE");
        assert_eq!(
            summary,
            "S3User (AWS::IAM::User) CREATE_FAILED: User: arn:aws:iam::1:user/berth is not authorized to perform: iam:CreateUser"
        );
    }

    #[tokio::test]
    async fn update_rollback_is_an_error_and_the_stack_stays_usable() {
        let d = driver(
            Scripted::default()
                .describes(vec![
                    stack("id-1", "UPDATE_ROLLBACK_COMPLETE"),
                    stack("id-1", "UPDATE_ROLLBACK_IN_PROGRESS"),
                    stack("id-1", "UPDATE_ROLLBACK_COMPLETE"),
                ])
                .with_events(vec![
                    event(
                        NAME,
                        "AWS::CloudFormation::Stack",
                        "UPDATE_ROLLBACK_COMPLETE",
                        None,
                    ),
                    event(
                        "RegistrySecret",
                        "AWS::SecretsManager::Secret",
                        "UPDATE_FAILED",
                        Some("KMS key not found"),
                    ),
                    event(
                        NAME,
                        "AWS::CloudFormation::Stack",
                        "UPDATE_IN_PROGRESS",
                        Some("User Initiated"),
                    ),
                ])
                .creates(Ok(("cs-1".into(), "id-1".into())))
                .change_set(change_set(
                    "CREATE_COMPLETE",
                    None,
                    vec![change("Modify", "RegistrySecret", Some("False"))],
                )),
        );
        let err = d.ensure(&desired(None)).await.unwrap_err();
        assert!(
            matches!(&err, AwsError::StackFailed { status, summary, .. }
                if status == "UPDATE_ROLLBACK_COMPLETE" && summary.contains("RegistrySecret") && summary.contains("KMS key not found")),
            "{err:?}"
        );
        // The previous rollback did not stop Berth from planning an update.
        assert!(d
            .api()
            .calls()
            .contains(&"create_change_set Update".to_string()));
    }

    #[tokio::test]
    async fn update_rollback_failed_needs_a_person() {
        let d =
            driver(Scripted::default().describes(vec![stack("id-1", "UPDATE_ROLLBACK_FAILED")]));
        let err = d.ensure(&desired(None)).await.unwrap_err();
        assert!(
            matches!(err, AwsError::StackNeedsAttention { ref status, .. } if status == "UPDATE_ROLLBACK_FAILED"),
            "{err:?}"
        );
        assert!(!d
            .api()
            .calls()
            .iter()
            .any(|c| c.starts_with("create_change_set")));
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
        let d =
            driver(Scripted::default().describes(vec![stack("id-1", "UPDATE_IN_PROGRESS"); 20]));
        let err = d.wait_until_settled("id-1").await.unwrap_err();
        assert!(
            matches!(err, AwsError::WaitTimeout { ref status, .. } if status == "UPDATE_IN_PROGRESS"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn failed_change_set_reports_reason() {
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
    }

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

    #[test]
    fn plan_reads_like_a_diff() {
        let plan = StackPlan {
            stack_name: NAME.into(),
            stack_id: "id".into(),
            kind: ChangeSetKind::Update,
            change_set_id: Some("cs".into()),
            changes: vec![
                PlannedChange::from(&change("Modify", "RegistrySecret", Some("False"))),
                PlannedChange::from(&change("Modify", "DatabaseSecret", Some("True"))),
                PlannedChange::from(&change("Remove", "Old", None)),
            ],
        };
        assert_eq!(
            plan.to_string(),
            "stack berth-seaview-trucking: update: 1 to modify, 1 to replace, 1 to remove\n  \
             ~ RegistrySecret AWS::SecretsManager::Secret\n  \
             ± DatabaseSecret AWS::SecretsManager::Secret (replaced)\n  \
             - Old AWS::SecretsManager::Secret"
        );
    }

    #[test]
    fn secret_parameters_are_redacted_in_debug() {
        let text = format!("{:?}", desired(None));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("[redacted]"));
    }
}
