//! Deleting a stack, once, safely repeated after a crash.

use super::owner::{check_owner, owner_tags};
use super::{unique_suffix, StackDriver};
use crate::api::CloudFormationApi;
use crate::error::{AwsError, Result};
use crate::status::{phase, Phase};
use crate::unit::Tag;

/// What [`StackDriver::delete_once`] found and did; exactly one call over a stack's life
/// reports [`DeletionOutcome::Deleted`] unless a crash came between `DeleteStack` and the
/// wait, in which case the repeat reports [`DeletionOutcome::FinishedEarlierDeletion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionOutcome {
    /// This call sent `DeleteStack` and saw the stack gone.
    Deleted,
    /// The stack was already `DELETE_IN_PROGRESS` (an earlier call's deletion); this call
    /// waited until it was gone and sent nothing.
    FinishedEarlierDeletion,
    /// There was no live stack: nothing was sent.
    AlreadyGone,
}

impl<A: CloudFormationApi> StackDriver<A> {
    /// Deletes a stack once and waits until it is gone; safe to repeat after a crash. A stack
    /// already gone (or `DELETE_COMPLETE`) is [`DeletionOutcome::AlreadyGone`]; one found in
    /// `DELETE_IN_PROGRESS` (a deletion started earlier) is waited for, without a second
    /// `DeleteStack`, and is [`DeletionOutcome::FinishedEarlierDeletion`]; any other busy
    /// state is waited out first. `DELETE_FAILED` needs a person
    /// ([`AwsError::StackNeedsAttention`]). A stack whose `berth:company`/`berth:unit` tags do
    /// not match `owner` is refused ([`AwsError::NotOurStack`]) before anything is sent.
    #[tracing::instrument(skip_all, fields(stack = %stack_id))]
    pub async fn delete_once(&self, stack_id: &str, owner: &[Tag]) -> Result<DeletionOutcome> {
        let owner = owner_tags(owner)?;
        let Some(stack) = self.describe(stack_id).await? else {
            return Ok(DeletionOutcome::AlreadyGone);
        };
        if phase(&stack.status) != Phase::Deleted {
            check_owner(&stack, &owner)?;
        }
        let stack = match phase(&stack.status) {
            Phase::Deleted => return Ok(DeletionOutcome::AlreadyGone),
            _ if stack.status == "DELETE_IN_PROGRESS" => {
                tracing::info!("stack already being deleted, waiting for it");
                return match self.wait_until_settled(&stack.stack_id).await? {
                    None => Ok(DeletionOutcome::FinishedEarlierDeletion),
                    Some(s) if phase(&s.status) == Phase::Deleted => {
                        Ok(DeletionOutcome::FinishedEarlierDeletion)
                    }
                    Some(s) => Err(self.failure(&s).await),
                };
            }
            Phase::NeedsAttention => return Err(self.failure(&stack).await),
            Phase::InProgress => {
                tracing::info!(status = %stack.status, "stack busy, waiting before deleting");
                match self.wait_until_settled(&stack.stack_id).await? {
                    None => return Ok(DeletionOutcome::AlreadyGone),
                    Some(s) if phase(&s.status) == Phase::Deleted => {
                        return Ok(DeletionOutcome::AlreadyGone)
                    }
                    Some(s) if phase(&s.status) == Phase::NeedsAttention => {
                        return Err(self.failure(&s).await)
                    }
                    Some(s) => s,
                }
            }
            _ => stack,
        };
        self.delete(&stack.stack_id).await?;
        Ok(DeletionOutcome::Deleted)
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
}
