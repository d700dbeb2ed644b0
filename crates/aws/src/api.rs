//! The seam between Berth's stack logic and the CloudFormation SDK.
//!
//! [`CloudFormationApi`] speaks in small plain types, so the state machine in
//! [`crate::driver`] is tested with scripted answers (rollbacks, in-progress states,
//! failure events: what no emulator produces), and [`SdkCloudFormation`] is the one
//! implementation that talks to AWS.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_cloudformation as cfn;
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;
use crate::unit::Tag;

/// A stack as `DescribeStacks` reports it (outputs are ARNs and names, never secret values).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StackSnapshot {
    pub stack_id: String,
    pub stack_name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub tags: Vec<Tag>,
    pub outputs: BTreeMap<String, String>,
}

/// One stack event, newest first as CloudFormation lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackEvent {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// One resource of a stack (never a secret value: ids and types only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: String,
}

/// A template parameter; secret values stay wrapped until the SDK call.
#[derive(Clone)]
pub enum ParameterValue {
    Plain(String),
    Secret(SecretString),
    /// The version id of a secret the template reads itself (a `{{resolve:secretsmanager:…}}`
    /// reference): not secret, shown in previews, but left out of the fingerprint like a
    /// secret's value, since a rotated secret does not change what approvers reviewed.
    SecretVersion(String),
}

impl std::fmt::Debug for ParameterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParameterValue::Plain(v) | ParameterValue::SecretVersion(v) => write!(f, "{v:?}"),
            ParameterValue::Secret(_) => f.write_str("[redacted]"),
        }
    }
}

impl PartialEq for ParameterValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ParameterValue::Plain(a), ParameterValue::Plain(b))
            | (ParameterValue::SecretVersion(a), ParameterValue::SecretVersion(b)) => a == b,
            (ParameterValue::Secret(a), ParameterValue::Secret(b)) => {
                a.expose_secret() == b.expose_secret()
            }
            _ => false,
        }
    }
}

/// Create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeSetKind {
    Create,
    Update,
}

/// Everything `CreateChangeSet` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub kind: ChangeSetKind,
    pub template_body: String,
    pub parameters: Vec<(String, ParameterValue)>,
    pub tags: Vec<Tag>,
    pub description: Option<String>,
}

/// A change set as `DescribeChangeSet` reports it (all pages of changes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSetSnapshot {
    pub change_set_id: String,
    pub stack_id: String,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, …
    pub status: String,
    pub status_reason: Option<String>,
    pub execution_status: Option<String>,
    pub changes: Vec<ResourceChange>,
}

/// One resource change of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    /// `True`, `False` or `Conditional` for modifications.
    pub replacement: Option<String>,
}

/// One entry of `ListChangeSets`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSetSummary {
    pub change_set_id: String,
    pub change_set_name: String,
    pub stack_id: String,
    pub stack_name: String,
    /// `CREATE_COMPLETE`, `FAILED`, `DELETE_PENDING`, …
    pub status: String,
}

/// The CloudFormation calls the AWS stage makes.
pub trait CloudFormationApi: Send + Sync {
    /// `DescribeStacks` for one name or id; `None` when it does not exist.
    fn describe_stack(
        &self,
        name_or_id: &str,
    ) -> impl Future<Output = Result<Option<StackSnapshot>, ApiError>> + Send;
    /// One page of `DescribeStacks` over all live stacks.
    fn list_stacks_page(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<(Vec<StackSnapshot>, Option<String>), ApiError>> + Send;
    /// The most recent events of a stack (one page), newest first.
    fn recent_events(
        &self,
        stack_id: &str,
    ) -> impl Future<Output = Result<Vec<StackEvent>, ApiError>> + Send;
    fn list_resources(
        &self,
        stack_id: &str,
    ) -> impl Future<Output = Result<Vec<StackResource>, ApiError>> + Send;
    /// Returns `(change_set_id, stack_id)`.
    fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> impl Future<Output = Result<(String, String), ApiError>> + Send;
    fn describe_change_set(
        &self,
        change_set_id: &str,
    ) -> impl Future<Output = Result<ChangeSetSnapshot, ApiError>> + Send;
    fn execute_change_set(
        &self,
        change_set_id: &str,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    fn delete_change_set(
        &self,
        change_set_id: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Every change set of one stack (all pages); empty when the stack does not exist.
    fn list_change_sets(
        &self,
        stack_name_or_id: &str,
    ) -> impl Future<Output = Result<Vec<ChangeSetSummary>, ApiError>> + Send;
    fn delete_stack(
        &self,
        stack_id: &str,
        client_token: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// [`CloudFormationApi`] over the official SDK client.
#[derive(Debug, Clone)]
pub struct SdkCloudFormation {
    client: cfn::Client,
}

impl SdkCloudFormation {
    pub fn new(client: cfn::Client) -> Self {
        Self { client }
    }
}

fn snapshot(stack: &cfn::types::Stack) -> StackSnapshot {
    StackSnapshot {
        stack_id: stack.stack_id().unwrap_or_default().to_owned(),
        stack_name: stack.stack_name().unwrap_or_default().to_owned(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        status_reason: stack.stack_status_reason().map(str::to_owned),
        tags: stack
            .tags()
            .iter()
            .map(|t| Tag {
                key: t.key().unwrap_or_default().to_owned(),
                value: t.value().unwrap_or_default().to_owned(),
            })
            .collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
    }
}

impl CloudFormationApi for SdkCloudFormation {
    async fn describe_stack(&self, name_or_id: &str) -> Result<Option<StackSnapshot>, ApiError> {
        match self
            .client
            .describe_stacks()
            .stack_name(name_or_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.stacks().first().map(snapshot)),
            Err(err) => {
                let err = ApiError::from_sdk("DescribeStacks", err);
                if err.is_stack_missing() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn list_stacks_page(
        &self,
        next_token: Option<String>,
    ) -> Result<(Vec<StackSnapshot>, Option<String>), ApiError> {
        let out = self
            .client
            .describe_stacks()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("DescribeStacks", e))?;
        Ok((
            out.stacks().iter().map(snapshot).collect(),
            out.next_token().map(str::to_owned),
        ))
    }

    async fn recent_events(&self, stack_id: &str) -> Result<Vec<StackEvent>, ApiError> {
        let out = self
            .client
            .describe_stack_events()
            .stack_name(stack_id)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("DescribeStackEvents", e))?;
        Ok(out
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: e.resource_type().unwrap_or_default().to_owned(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_owned),
            })
            .collect())
    }

    async fn list_resources(&self, stack_id: &str) -> Result<Vec<StackResource>, ApiError> {
        let mut resources = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_stack_resources()
                .stack_name(stack_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("ListStackResources", e))?;
            resources.extend(out.stack_resource_summaries().iter().filter_map(|r| {
                let logical_id = r.logical_resource_id()?;
                (!logical_id.is_empty()).then(|| StackResource {
                    logical_id: logical_id.to_owned(),
                    resource_type: r.resource_type().unwrap_or_default().to_owned(),
                    physical_id: r
                        .physical_resource_id()
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                    status: r
                        .resource_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                })
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(resources);
            }
        }
    }

    async fn create_change_set(
        &self,
        request: &ChangeSetRequest,
    ) -> Result<(String, String), ApiError> {
        let kind = match request.kind {
            ChangeSetKind::Create => cfn::types::ChangeSetType::Create,
            ChangeSetKind::Update => cfn::types::ChangeSetType::Update,
        };
        let parameters = request
            .parameters
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    ParameterValue::Plain(v) | ParameterValue::SecretVersion(v) => v.as_str(),
                    ParameterValue::Secret(v) => v.expose_secret(),
                };
                cfn::types::Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build()
            })
            .collect();
        let tags = request
            .tags
            .iter()
            .map(|t| {
                cfn::types::Tag::builder()
                    .key(&t.key)
                    .value(&t.value)
                    .build()
            })
            .collect();
        let out = self
            .client
            .create_change_set()
            .stack_name(&request.stack_name)
            .change_set_name(&request.change_set_name)
            .change_set_type(kind)
            .template_body(&request.template_body)
            .set_parameters(Some(parameters))
            .set_tags(Some(tags))
            .capabilities(cfn::types::Capability::CapabilityIam)
            .set_description(request.description.clone())
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("CreateChangeSet", e))?;
        Ok((
            out.id().unwrap_or_default().to_owned(),
            out.stack_id().unwrap_or_default().to_owned(),
        ))
    }

    async fn describe_change_set(
        &self,
        change_set_id: &str,
    ) -> Result<ChangeSetSnapshot, ApiError> {
        let mut snapshot = ChangeSetSnapshot::default();
        let mut token = None;
        loop {
            let out = self
                .client
                .describe_change_set()
                .change_set_name(change_set_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| ApiError::from_sdk("DescribeChangeSet", e))?;
            snapshot.change_set_id = out.change_set_id().unwrap_or(change_set_id).to_owned();
            snapshot.stack_id = out.stack_id().unwrap_or_default().to_owned();
            snapshot.status = out
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            snapshot.status_reason = out.status_reason().map(str::to_owned);
            snapshot.execution_status = out.execution_status().map(|s| s.as_str().to_owned());
            snapshot.changes.extend(
                out.changes()
                    .iter()
                    .filter_map(|c| c.resource_change())
                    .map(|r| ResourceChange {
                        action: r
                            .action()
                            .map(|a| a.as_str().to_owned())
                            .unwrap_or_default(),
                        logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                        resource_type: r.resource_type().unwrap_or_default().to_owned(),
                        physical_id: r.physical_resource_id().map(str::to_owned),
                        replacement: r.replacement().map(|x| x.as_str().to_owned()),
                    }),
            );
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(snapshot);
            }
        }
    }

    async fn execute_change_set(
        &self,
        change_set_id: &str,
        client_token: &str,
    ) -> Result<(), ApiError> {
        self.client
            .execute_change_set()
            .change_set_name(change_set_id)
            .client_request_token(client_token)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("ExecuteChangeSet", e))?;
        Ok(())
    }

    async fn delete_change_set(&self, change_set_id: &str) -> Result<(), ApiError> {
        self.client
            .delete_change_set()
            .change_set_name(change_set_id)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("DeleteChangeSet", e))?;
        Ok(())
    }

    async fn list_change_sets(
        &self,
        stack_name_or_id: &str,
    ) -> Result<Vec<ChangeSetSummary>, ApiError> {
        let mut summaries = Vec::new();
        let mut token = None;
        loop {
            let out = match self
                .client
                .list_change_sets()
                .stack_name(stack_name_or_id)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) => {
                    let err = ApiError::from_sdk("ListChangeSets", err);
                    return if err.is_stack_missing() {
                        Ok(Vec::new())
                    } else {
                        Err(err)
                    };
                }
            };
            // Filtered here too: the emulator (moto 5.2.5) ignores `StackName` and lists the
            // change sets of every stack.
            summaries.extend(
                out.summaries()
                    .iter()
                    .filter(|c| {
                        c.stack_id() == Some(stack_name_or_id)
                            || c.stack_name() == Some(stack_name_or_id)
                    })
                    .map(|c| ChangeSetSummary {
                        change_set_id: c.change_set_id().unwrap_or_default().to_owned(),
                        change_set_name: c.change_set_name().unwrap_or_default().to_owned(),
                        stack_id: c.stack_id().unwrap_or_default().to_owned(),
                        stack_name: c.stack_name().unwrap_or_default().to_owned(),
                        status: c
                            .status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    }),
            );
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(summaries);
            }
        }
    }

    async fn delete_stack(&self, stack_id: &str, client_token: &str) -> Result<(), ApiError> {
        self.client
            .delete_stack()
            .stack_name(stack_id)
            .client_request_token(client_token)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk("DeleteStack", e))?;
        Ok(())
    }
}
