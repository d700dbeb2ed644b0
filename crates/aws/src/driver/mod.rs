//! The stack state machine: plan through a change set, execute, wait, recover.
//!
//! Everything here goes through [`CloudFormationApi`], so the paths no emulator can produce
//! (rollbacks, long in-progress states, failure events) are tested with scripted answers in
//! `crates/aws/tests/driver/`.

mod delete;
mod events;
mod lookup;
mod owner;
mod plan;
mod preview;
mod wait;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::{
    ChangeSetKind, ChangeSetRequest, ChangeSetSnapshot, CloudFormationApi, StackSnapshot,
};
use crate::error::{AwsError, Result};
use crate::status::{attention_hint, phase, Phase};
use crate::unit::Tag;
use owner::{check_owner, owner_tags};

pub use delete::DeletionOutcome;
pub use events::{operation_failures, summarize_failure, ResourceFailure};
pub use plan::{ChangeAction, DesiredStack, EnsureOutcome, PlannedChange, StackPlan};
pub use preview::{PreviewKind, PreviewParameter, StackPreview, REDACTED};
pub use wait::WaitPolicy;

fn unique_suffix() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// What a plan is for; decides what it may do to the stack and how strict its clean-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Towards execution (`plan`, `ensure`): a failed first create is deleted so that it can
    /// be created again, and an empty change set that cannot be deleted is only a warning.
    Execute,
    /// A preview: the stack is never changed, and a change set or review stack that cannot
    /// be deleted is an error, since the caller was promised nothing is left behind.
    Preview,
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
        let mut delays = self.wait.delays();
        loop {
            let snapshot = self.describe(stack_id).await?;
            match &snapshot {
                Some(s) if phase(&s.status) == Phase::InProgress => {
                    tracing::debug!(status = %s.status, "stack busy, waiting");
                    let Some(delay) = delays.next() else {
                        return Err(AwsError::WaitTimeout {
                            stack: s.stack_name.clone(),
                            status: s.status.clone(),
                            waited: delays.waited(),
                        });
                    };
                    tokio::time::sleep(delay).await;
                }
                _ => return Ok(snapshot),
            }
        }
    }

    /// The error for a stack that ended an operation in `stack.status`, from its events:
    /// [`AwsError::UpdateRolledBack`] for a rolled-back update (usable stack),
    /// [`AwsError::StackNeedsAttention`] for states only a person can clear
    /// (`UPDATE_ROLLBACK_FAILED`, `DELETE_FAILED`), [`AwsError::StackFailed`] otherwise.
    async fn failure(&self, stack: &StackSnapshot) -> AwsError {
        let (failures, summary) = match self.api.recent_events(&stack.stack_id).await {
            Ok(events) => {
                let failures = operation_failures(&stack.stack_name, &events);
                let summary = events::summarize_failures(
                    &stack.stack_name,
                    &events,
                    &failures,
                    stack.status_reason.as_deref(),
                );
                (failures, summary)
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read stack events");
                let summary = stack
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "stack events unavailable".into());
                (Vec::new(), summary)
            }
        };
        match phase(&stack.status) {
            Phase::UpdateRolledBack => AwsError::UpdateRolledBack {
                stack: stack.stack_name.clone(),
                failures,
                summary,
            },
            Phase::NeedsAttention => AwsError::StackNeedsAttention {
                stack: stack.stack_name.clone(),
                status: stack.status.clone(),
                hint: attention_hint(&stack.status).into(),
                cause: Some(summary),
            },
            _ => AwsError::StackFailed {
                stack: stack.stack_name.clone(),
                status: stack.status.clone(),
                summary,
            },
        }
    }

    /// A live stack of the unit under one of its former names (a stack made before Berth's
    /// current naming scheme), when its tags say it is the unit's. Another unit's stack that
    /// happens to have that name is not this unit's and is left alone.
    async fn former(&self, desired: &DesiredStack, owner: &[Tag]) -> Result<Option<StackSnapshot>> {
        for name in &desired.former_names {
            if let Some(stack) = self.describe(name).await? {
                if phase(&stack.status) != Phase::Deleted && check_owner(&stack, owner).is_ok() {
                    tracing::info!(stack = %stack.stack_name, "found the unit's stack under its former name");
                    return Ok(Some(stack));
                }
            }
        }
        Ok(None)
    }

    /// The live stack to plan against, after waiting out running operations and clearing a
    /// failed first create (refused in a preview, which never changes the stack). The stack is
    /// the recorded id's, else the one named `stack_name`, else one of the former names whose
    /// tags name the unit. A stack whose `berth:company`/`berth:unit` tags name someone else is
    /// refused ([`AwsError::NotOurStack`]): never updated, never deleted.
    async fn current(&self, desired: &DesiredStack, mode: Mode) -> Result<Option<StackSnapshot>> {
        let owner = owner_tags(&desired.tags)?;
        let mut target = desired
            .known_stack_id
            .clone()
            .unwrap_or_else(|| desired.stack_name.clone());
        // Each round either returns or moves the stack forward (wait or delete).
        for _ in 0..4 {
            let mut snapshot = self.describe(&target).await?;
            if snapshot.is_none()
                && desired.known_stack_id.is_none()
                && target == desired.stack_name
            {
                if let Some(former) = self.former(desired, &owner).await? {
                    target = former.stack_id.clone();
                    snapshot = Some(former);
                }
            }
            if let Some(stack) = &snapshot {
                if phase(&stack.status) != Phase::Deleted {
                    check_owner(stack, &owner)?;
                }
            }
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
                Phase::FailedCreate if mode == Mode::Preview => {
                    return Err(AwsError::PreviewUnavailable {
                        stack: stack.stack_name.clone(),
                        status: stack.status.clone(),
                        reason: "a failed first create: building deletes the stack and creates it \
                                 again, which previewing never does; no change set can be made \
                                 for it until then"
                            .into(),
                    });
                }
                Phase::FailedCreate => {
                    let cause = self.failure(&stack).await;
                    tracing::warn!(status = %stack.status, cause = %cause, "deleting stack of a failed create before recreating it");
                    self.delete(&stack.stack_id).await?;
                    return Ok(None);
                }
                Phase::NeedsAttention => {
                    // Permanent until a person acts; the events say what went wrong.
                    return Err(self.failure(&stack).await);
                }
                Phase::Review | Phase::Stable | Phase::UpdateRolledBack => return Ok(Some(stack)),
            }
        }
        Err(AwsError::StackNeedsAttention {
            stack: desired.stack_name.clone(),
            status: "changing".into(),
            hint: "the stack kept changing while Berth waited; another tool may be operating on it"
                .into(),
            cause: None,
        })
    }

    async fn wait_change_set(&self, change_set_id: &str) -> Result<ChangeSetSnapshot> {
        let mut delays = self.wait.delays();
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
            let Some(delay) = delays.next() else {
                return Err(AwsError::WaitTimeout {
                    stack: snapshot.stack_id,
                    status: format!("change set {}", snapshot.status),
                    waited: delays.waited(),
                });
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Creates a change set towards `desired` and describes it. Nothing is executed; a plan
    /// with no changes has no change set left behind, and a plan that fails deletes what it
    /// made (change set, and the review stack of a CREATE).
    #[tracing::instrument(skip_all, fields(stack = %desired.stack_name))]
    pub async fn plan(&self, desired: &DesiredStack) -> Result<StackPlan> {
        self.plan_in(desired, Mode::Execute).await
    }

    async fn plan_in(&self, desired: &DesiredStack, mode: Mode) -> Result<StackPlan> {
        let current = self.current(desired, mode).await?;
        let kind = match &current {
            Some(s) if phase(&s.status) != Phase::Review => ChangeSetKind::Update,
            _ => ChangeSetKind::Create,
        };
        // The stack as it is named: a unit's stack from before the current naming scheme
        // keeps its name.
        let stack_name = current
            .as_ref()
            .map_or_else(|| desired.stack_name.clone(), |s| s.stack_name.clone());
        let request = ChangeSetRequest {
            stack_name: stack_name.clone(),
            change_set_name: format!("berth-{}", unique_suffix()),
            kind,
            template_body: desired.template_body.clone(),
            parameters: desired.parameters.clone(),
            tags: desired.tags.clone(),
            description: Some("Planned by Berth".into()),
        };
        let stack_label = format!("stack {stack_name}");
        let (change_set_id, stack_id) = match self.api.create_change_set(&request).await {
            Ok(ids) => ids,
            Err(err) if is_no_changes(&err.message) => {
                let stack_id = current.map(|s| s.stack_id).unwrap_or_default();
                return Ok(StackPlan {
                    stack_name: stack_name.clone(),
                    stack_id,
                    kind,
                    change_set_id: None,
                    changes: Vec::new(),
                });
            }
            Err(err) => {
                // A refused CREATE may still have made the empty review stack.
                let err = AwsError::api(stack_label, err);
                self.clean_up_after(&err, &stack_name, None, kind).await;
                return Err(err);
            }
        };
        tracing::info!(change_set = %change_set_id, ?kind, "change set created");
        let stack_ref = if stack_id.is_empty() {
            stack_name.as_str()
        } else {
            stack_id.as_str()
        };
        let described = match self.wait_change_set(&change_set_id).await {
            Ok(described) => described,
            Err(err) => {
                self.clean_up_after(&err, stack_ref, Some(&change_set_id), kind)
                    .await;
                return Err(err);
            }
        };
        if described.status != "CREATE_COMPLETE" {
            let reason = described.status_reason.unwrap_or_default();
            if is_no_changes(&reason) {
                if let Err(err) = self.api.delete_change_set(&change_set_id).await {
                    let err = AwsError::api(format!("change set {change_set_id}"), err);
                    if mode == Mode::Preview {
                        return Err(err);
                    }
                    tracing::warn!(error = %err, "could not delete the empty change set");
                }
                tracing::info!("stack already matches, nothing to do");
                return Ok(StackPlan {
                    stack_name: stack_name.clone(),
                    stack_id,
                    kind,
                    change_set_id: None,
                    changes: Vec::new(),
                });
            }
            let err = AwsError::ChangeSetFailed {
                stack: stack_name.clone(),
                change_set: change_set_id.clone(),
                reason,
            };
            self.clean_up_after(&err, stack_ref, Some(&change_set_id), kind)
                .await;
            return Err(err);
        }
        Ok(StackPlan {
            stack_name: stack_name.clone(),
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

    /// What building `desired` would do, read from a change set that is deleted again
    /// (with the review stack of a CREATE) whether planning succeeds or fails. The stack
    /// itself is never changed: a failed first create is reported, not cleared.
    #[tracing::instrument(skip_all, fields(stack = %desired.stack_name))]
    pub async fn preview(&self, desired: &DesiredStack) -> Result<StackPreview> {
        let plan = self.plan_in(desired, Mode::Preview).await?;
        self.discard(&plan).await?;
        tracing::info!(summary = %plan.summary(), "stack previewed, change set deleted");
        Ok(StackPreview::new(desired, &plan))
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
        let stack = if plan.stack_id.is_empty() {
            &plan.stack_name
        } else {
            &plan.stack_id
        };
        self.clean_up(stack, Some(change_set_id), plan.kind).await
    }

    /// Deletes a change set Berth made and, for a CREATE, the empty `REVIEW_IN_PROGRESS`
    /// stack that came with it. Both are attempted; the first failure is returned.
    async fn clean_up(
        &self,
        stack: &str,
        change_set_id: Option<&str>,
        kind: ChangeSetKind,
    ) -> Result<()> {
        let mut result = Ok(());
        if let Some(id) = change_set_id {
            if let Err(err) = self.api.delete_change_set(id).await {
                result = Err(AwsError::api(format!("change set {id}"), err));
            }
        }
        if kind == ChangeSetKind::Create {
            let deleted = self.delete_review_stack(stack, change_set_id).await;
            if result.is_ok() {
                result = deleted;
            }
        }
        result
    }

    /// [`Self::clean_up`] after a failed plan: the plan's own error is what the caller
    /// needs, so a clean-up failure is logged beside it.
    async fn clean_up_after(
        &self,
        cause: &AwsError,
        stack: &str,
        change_set_id: Option<&str>,
        kind: ChangeSetKind,
    ) {
        if let Err(err) = self.clean_up(stack, change_set_id, kind).await {
            tracing::warn!(error = %err, cause = %cause, "could not clean up after a failed plan");
        }
    }

    /// Deletes a stack still in `REVIEW_IN_PROGRESS` (it has no resources), unless a change
    /// set other than `ours` is still on it: another plan in flight needs that stack.
    async fn delete_review_stack(&self, stack: &str, ours: Option<&str>) -> Result<()> {
        let Some(snapshot) = self.describe(stack).await? else {
            return Ok(());
        };
        if phase(&snapshot.status) != Phase::Review {
            return Ok(());
        }
        let others: Vec<_> = self
            .api
            .list_change_sets(&snapshot.stack_id)
            .await
            .map_err(|e| AwsError::api(format!("stack {}", snapshot.stack_name), e))?
            .into_iter()
            .filter(|c| Some(c.change_set_id.as_str()) != ours && !c.status.starts_with("DELETE_"))
            .collect();
        if let Some(other) = others.first() {
            tracing::info!(change_set = %other.change_set_id, "review stack kept: another change set is on it");
            return Ok(());
        }
        self.delete(&snapshot.stack_id).await
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
}
