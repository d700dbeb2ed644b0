//! Finding a unit's stack by its tags, and reading a stack's resources.

use super::StackDriver;
use crate::api::{CloudFormationApi, StackResource, StackSnapshot};
use crate::error::{AwsError, Result};
use crate::status::{phase, Phase};
use crate::unit::Tag;

impl<A: CloudFormationApi> StackDriver<A> {
    /// Finds the one live stack carrying `tag` by paginating `DescribeStacks`.
    pub async fn find_by_tag(&self, tag: &Tag) -> Result<Option<StackSnapshot>> {
        self.find_by_tags(std::slice::from_ref(tag)).await
    }

    /// Finds the one live stack carrying every tag of `tags` by paginating `DescribeStacks`.
    /// A stack with only some of them (another unit's stack with the same company tag, say)
    /// is not it.
    #[tracing::instrument(skip_all, fields(tags = ?tags))]
    pub async fn find_by_tags(&self, tags: &[Tag]) -> Result<Option<StackSnapshot>> {
        let wanted = tags
            .iter()
            .map(Tag::to_string)
            .collect::<Vec<_>>()
            .join(" and ");
        let mut found: Option<StackSnapshot> = None;
        let mut token = None;
        loop {
            let (stacks, next) = self
                .api
                .list_stacks_page(token)
                .await
                .map_err(|e| AwsError::api(format!("stacks tagged {wanted}"), e))?;
            for stack in stacks {
                if phase(&stack.status) == Phase::Deleted
                    || !tags.iter().all(|t| stack.tags.contains(t))
                {
                    continue;
                }
                if let Some(first) = &found {
                    return Err(AwsError::AmbiguousStacks {
                        tag: wanted.clone(),
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
