//! The AWS stage as pipeline steps: "ensure the unit's stack is at the desired template and
//! parameters" and "read the unit's secrets".

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api::{
    CloudFormationApi, ParameterValue, SdkCloudFormation, StackResource, StackSnapshot,
};
use crate::decommission::{
    retained_resources, RemovalCheck, RemovalProof, RetainedResource, ScheduledSecret,
    RECOVERY_WINDOW_DAYS,
};
use crate::driver::{
    DeletionOutcome, DesiredStack, EnsureOutcome, StackDriver, StackPlan, StackPreview, WaitPolicy,
};
use crate::error::{AwsError, Result};
use crate::secrets::{SecretsReader, StoredSecretVersion, UnitSecrets};
use crate::settings::{load_sdk_config, AwsSettings};
use crate::unit::{Tag, TagScheme, UnitIdentity};

/// The business-unit template, compiled in so the code and the template it drives never drift.
pub const BUSINESS_UNIT_TEMPLATE: &str =
    include_str!("../../../templates/cloudformation/business-unit.yaml");

/// The inputs of a unit's stack besides its identity.
#[derive(Clone)]
pub struct UnitParameters {
    pub registry_server: String,
    pub registry_username: String,
    /// Never a stack parameter: stored in the company's registry password secret, which the
    /// template reads by dynamic reference ([`AwsStage::store_registry_password`]).
    pub registry_password: SecretString,
    pub oauth_client_id: String,
    pub db_username: String,
    /// Customer managed KMS key for the secrets; the account default when `None`.
    pub kms_key_id: Option<String>,
    /// A company-wide bucket to use instead of creating one for the unit.
    pub existing_bucket: Option<String>,
    /// Permissions boundary attached to the unit's IAM user (required by Berth's own role in
    /// the Terraform setup).
    pub permissions_boundary: Option<String>,
}

impl std::fmt::Debug for UnitParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitParameters")
            .field("registry_server", &self.registry_server)
            .field("registry_username", &self.registry_username)
            .field("registry_password", &"[redacted]")
            .field("oauth_client_id", &self.oauth_client_id)
            .field("db_username", &self.db_username)
            .field("kms_key_id", &self.kms_key_id)
            .field("existing_bucket", &self.existing_bucket)
            .field("permissions_boundary", &self.permissions_boundary)
            .finish()
    }
}

impl UnitParameters {
    /// The template's parameters; `registry_password_version` is the version id of the
    /// company's registry password secret that the template's reference is pinned to.
    fn template_parameters(
        &self,
        unit: &UnitIdentity,
        tag: &Tag,
        registry_password_version: &str,
    ) -> Result<Vec<(String, ParameterValue)>> {
        if self.registry_password.expose_secret().is_empty() {
            return Err(AwsError::InvalidInput("registry password is empty".into()));
        }
        for (what, value) in [
            ("registry server", &self.registry_server),
            ("registry username", &self.registry_username),
            ("OAuth client id", &self.oauth_client_id),
        ] {
            if value.is_empty()
                || value.contains(['"', '\\'])
                || value.chars().any(char::is_control)
            {
                return Err(AwsError::InvalidInput(format!(
                    "{what} {value:?} must be non-empty without quotes, backslashes or control characters"
                )));
            }
        }
        let plain =
            |key: &str, value: &str| (key.to_owned(), ParameterValue::Plain(value.to_owned()));
        Ok(vec![
            plain("CompanySlug", unit.company_slug()),
            plain("UnitSlug", unit.unit_slug()),
            plain("Incarnation", unit.incarnation().unwrap_or("")),
            plain("TagKey", &tag.key),
            plain("TagValue", &tag.value),
            plain("RegistryServer", &self.registry_server),
            plain("RegistryUsername", &self.registry_username),
            (
                "RegistryPasswordVersion".into(),
                ParameterValue::SecretVersion(registry_password_version.to_owned()),
            ),
            plain("OAuthClientId", &self.oauth_client_id),
            plain("DbUsername", &self.db_username),
            plain("KmsKeyId", self.kms_key_id.as_deref().unwrap_or("")),
            plain(
                "ExistingBucketName",
                self.existing_bucket.as_deref().unwrap_or(""),
            ),
            plain(
                "PermissionsBoundaryArn",
                self.permissions_boundary.as_deref().unwrap_or(""),
            ),
        ])
    }
}

/// The template's outputs: ARNs and names the next stage needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitOutputs {
    pub registry_secret_arn: String,
    pub oauth_client_secret_arn: String,
    pub database_secret_arn: String,
    pub s3_credentials_secret_arn: String,
    pub s3_user_arn: String,
    pub data_bucket_name: String,
    pub data_prefix: String,
}

impl UnitOutputs {
    pub fn from_stack(stack: &StackSnapshot) -> Result<Self> {
        let get = |key: &str| {
            stack
                .outputs
                .get(key)
                .cloned()
                .ok_or_else(|| AwsError::MissingOutput {
                    stack: stack.stack_name.clone(),
                    key: key.into(),
                })
        };
        Ok(Self {
            registry_secret_arn: get("RegistrySecretArn")?,
            oauth_client_secret_arn: get("OAuthClientSecretArn")?,
            database_secret_arn: get("DatabaseSecretArn")?,
            s3_credentials_secret_arn: get("S3CredentialsSecretArn")?,
            s3_user_arn: get("S3UserArn")?,
            data_bucket_name: get("DataBucketName")?,
            data_prefix: get("DataPrefix")?,
        })
    }
}

/// What happened in the "ensure stack" step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsureKind {
    Created,
    Updated,
    Unchanged,
}

/// The result of [`AwsStage::ensure_unit_stack`]: safe to store and show (no secret values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsuredUnit {
    pub kind: EnsureKind,
    /// The executed plan (`None` when nothing changed).
    pub plan: Option<StackPlan>,
    pub stack: StackSnapshot,
    pub outputs: UnitOutputs,
}

/// A unit's stack found by tag: status, outputs and resources (ids and types only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStack {
    pub stack: StackSnapshot,
    pub resources: Vec<StackResource>,
}

impl UnitStack {
    pub fn outputs(&self) -> Result<UnitOutputs> {
        UnitOutputs::from_stack(&self.stack)
    }
}

/// The AWS stage of provisioning.
#[derive(Debug, Clone)]
pub struct AwsStage<A = SdkCloudFormation> {
    driver: StackDriver<A>,
    secrets: SecretsReader,
    tag_scheme: TagScheme,
}

impl AwsStage<SdkCloudFormation> {
    /// Builds the stage from settings and the standard SDK sources.
    pub async fn connect(settings: &AwsSettings) -> Result<Self> {
        if let Err(problems) = settings.validate() {
            return Err(AwsError::Config(problems.join("; ")));
        }
        let config = load_sdk_config(settings).await?;
        Ok(Self::from_sdk_config(
            &config,
            settings.tag_scheme.clone(),
            WaitPolicy::default(),
        ))
    }

    pub fn from_sdk_config(config: &SdkConfig, tag_scheme: TagScheme, wait: WaitPolicy) -> Self {
        Self::from_clients(
            aws_sdk_cloudformation::Client::new(config),
            aws_sdk_secretsmanager::Client::new(config),
            tag_scheme,
            wait,
        )
    }

    /// From ready clients (e.g. with extra interceptors).
    pub fn from_clients(
        cloudformation: aws_sdk_cloudformation::Client,
        secretsmanager: aws_sdk_secretsmanager::Client,
        tag_scheme: TagScheme,
        wait: WaitPolicy,
    ) -> Self {
        Self {
            driver: StackDriver::new(SdkCloudFormation::new(cloudformation), wait),
            secrets: SecretsReader::new(secretsmanager),
            tag_scheme,
        }
    }
}

impl<A: CloudFormationApi> AwsStage<A> {
    pub fn driver(&self) -> &StackDriver<A> {
        &self.driver
    }

    pub fn tag_scheme(&self) -> &TagScheme {
        &self.tag_scheme
    }

    /// The desired stack for a unit, with the registry password version it reads: validates
    /// every input, then stores the password ([`Self::store_registry_password`]).
    pub async fn desired_stack(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
    ) -> Result<DesiredStack> {
        // Validated before the password is written anywhere.
        self.desired_stack_at(unit, params, known_stack_id, "")?;
        let stored = self.store_registry_password(unit, params).await?;
        self.desired_stack_at(unit, params, known_stack_id, &stored.version_id)
    }

    fn desired_stack_at(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
        registry_password_version: &str,
    ) -> Result<DesiredStack> {
        let tags = self.tag_scheme.stack_tags(unit)?;
        Ok(DesiredStack {
            stack_name: unit.stack_name(),
            template_body: BUSINESS_UNIT_TEMPLATE.to_owned(),
            parameters: params.template_parameters(unit, &tags[0], registry_password_version)?,
            tags,
            known_stack_id: known_stack_id.map(str::to_owned),
            former_names: vec![unit.legacy_stack_name()],
        })
    }

    /// Makes the company's registry password secret (`berth/<company>/registry-password`) hold
    /// `params.registry_password`, writing a new version only when it differs, and returns the
    /// version the unit's stack is to read. The password reaches CloudFormation only through
    /// this secret: the template resolves it by a reference pinned to the version id, so a
    /// rotated password changes the `RegistryPasswordVersion` parameter and the update reads
    /// it again. Called by [`Self::desired_stack`], so by every preview, plan and build.
    pub async fn store_registry_password(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
    ) -> Result<StoredSecretVersion> {
        self.secrets
            .store_registry_password(
                unit.company_slug(),
                &params.registry_password,
                params.kms_key_id.as_deref(),
            )
            .await
    }

    /// [`DesiredStack::fingerprint`] of the unit's desired stack, without any AWS call: the
    /// same inputs give the same value, so a build can check it still matches an approval.
    /// The registry password's version is not part of it (nor is the password).
    pub fn desired_fingerprint(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
    ) -> Result<String> {
        Ok(self
            .desired_stack_at(unit, params, known_stack_id, "")?
            .fingerprint())
    }

    /// What building the unit's stack would do, for approvers: planned through a change set
    /// that is always deleted again (with the empty stack of a CREATE), also when planning
    /// fails. Nothing is executed and the stack is not changed.
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn preview_unit_stack(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
    ) -> Result<StackPreview> {
        let desired = self.desired_stack(unit, params, known_stack_id).await?;
        self.driver.preview(&desired).await
    }

    /// A plan kept for [`Self::apply_plan`]: a change set, created but not executed, that
    /// stays until applied or discarded (approvers read [`Self::preview_unit_stack`]).
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn plan_unit_stack(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
    ) -> Result<StackPlan> {
        let desired = self.desired_stack(unit, params, known_stack_id).await?;
        self.driver.plan(&desired).await
    }

    /// Executes a plan from [`Self::plan_unit_stack`].
    pub async fn apply_plan(&self, plan: &StackPlan) -> Result<StackSnapshot> {
        self.driver.apply(plan).await
    }

    pub async fn discard_plan(&self, plan: &StackPlan) -> Result<()> {
        self.driver.discard(plan).await
    }

    /// Step "ensure stack": idempotent; the same inputs twice give `Unchanged`.
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn ensure_unit_stack(
        &self,
        unit: &UnitIdentity,
        params: &UnitParameters,
        known_stack_id: Option<&str>,
    ) -> Result<EnsuredUnit> {
        let desired = self.desired_stack(unit, params, known_stack_id).await?;
        let (kind, plan, stack) = match self.driver.ensure(&desired).await? {
            EnsureOutcome::Created { stack, plan } => (EnsureKind::Created, Some(plan), stack),
            EnsureOutcome::Updated { stack, plan } => (EnsureKind::Updated, Some(plan), stack),
            EnsureOutcome::Unchanged { stack } => (EnsureKind::Unchanged, None, stack),
        };
        let outputs = UnitOutputs::from_stack(&stack)?;
        tracing::info!(?kind, stack_id = %stack.stack_id, "unit stack ensured");
        Ok(EnsuredUnit {
            kind,
            plan,
            stack,
            outputs,
        })
    }

    /// The tags a stack of `unit` carries and is found by: the company's unit tag and the
    /// `berth:company`/`berth:unit` tags. A stack with the unit tag but another unit's slugs
    /// (two names that map to the same tag text, say) is not the unit's.
    fn find_tags(&self, unit: &UnitIdentity) -> Result<Vec<Tag>> {
        let mut tags = vec![self.tag_scheme.unit_tag(unit)?];
        tags.extend(unit.owner_tags());
        Ok(tags)
    }

    /// Finds the unit's stack by its tags, with resources and outputs.
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn find_unit_stack(&self, unit: &UnitIdentity) -> Result<Option<UnitStack>> {
        let Some(stack) = self.driver.find_by_tags(&self.find_tags(unit)?).await? else {
            return Ok(None);
        };
        let resources = self.driver.resources(&stack.stack_id).await?;
        Ok(Some(UnitStack { stack, resources }))
    }

    /// Step "read secrets": every secret of the unit, by the ARNs in its outputs.
    #[tracing::instrument(skip_all, fields(stack = %outputs.s3_user_arn))]
    pub async fn read_unit_secrets(&self, outputs: &UnitOutputs) -> Result<UnitSecrets> {
        let (registry, oauth, database, s3) = tokio::try_join!(
            self.secrets.read_json(&outputs.registry_secret_arn),
            self.secrets.read_json(&outputs.oauth_client_secret_arn),
            self.secrets.read_json(&outputs.database_secret_arn),
            self.secrets.read_json(&outputs.s3_credentials_secret_arn),
        )?;
        Ok(UnitSecrets {
            registry,
            oauth,
            database,
            s3,
        })
    }

    /// Deletes the unit's stack (found by tag) and waits until it is gone; idempotent. What
    /// the template retains ([`Self::retained_resources`]: the bucket, the secrets) stays.
    /// The outcome says whether this call deleted it, finished a deletion an earlier
    /// (crashed) call started, or found nothing, so that callers record one deletion.
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn delete_unit_stack(&self, unit: &UnitIdentity) -> Result<StackDeletion> {
        let Some(stack) = self.driver.find_by_tags(&self.find_tags(unit)?).await? else {
            return Ok(StackDeletion {
                stack_name: unit.stack_name(),
                stack_id: None,
                outcome: DeletionOutcome::AlreadyGone,
            });
        };
        let outcome = self
            .driver
            .delete_once(&stack.stack_id, &unit.owner_tags())
            .await?;
        tracing::info!(?outcome, stack_id = %stack.stack_id, "unit stack deleted");
        Ok(StackDeletion {
            stack_name: stack.stack_name,
            stack_id: Some(stack.stack_id),
            outcome,
        })
    }

    /// What deleting the unit's stack keeps, read from the template's deletion policies:
    /// logical id, type and why, for the decommission plan.
    pub fn retained_resources(&self) -> Result<Vec<RetainedResource>> {
        retained_resources(BUSINESS_UNIT_TEMPLATE)
    }

    /// The tags every secret of the unit carries (set by the template) and only its secrets.
    fn secret_tags(unit: &UnitIdentity) -> [Tag; 2] {
        let [company, unit] = unit.owner_tags();
        [unit, company]
    }

    /// Schedules every secret of the unit (found by its `berth:company`/`berth:unit` tags,
    /// including those already scheduled) for deletion after `recovery_window_days` (7 to
    /// 30). Idempotent: secrets already scheduled are left as they are, so a repeat changes
    /// nothing. Refused while the unit's stack is live (its secrets are in use): delete the
    /// stack first ([`Self::delete_unit_stack`]).
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn schedule_unit_secret_deletion(
        &self,
        unit: &UnitIdentity,
        recovery_window_days: u16,
    ) -> Result<Vec<ScheduledSecret>> {
        if !RECOVERY_WINDOW_DAYS.contains(&recovery_window_days) {
            return Err(AwsError::InvalidInput(format!(
                "recovery window of {recovery_window_days} days: Secrets Manager accepts {} to {}",
                RECOVERY_WINDOW_DAYS.start(),
                RECOVERY_WINDOW_DAYS.end()
            )));
        }
        if let Some(stack) = self.driver.find_by_tags(&self.find_tags(unit)?).await? {
            return Err(AwsError::Precondition(format!(
                "the secrets of {} are not scheduled for deletion while its stack {} ({}) is \
                 live: delete the stack first",
                unit.stack_name(),
                stack.stack_id,
                stack.status
            )));
        }
        let listed = self.secrets.list_tagged(&Self::secret_tags(unit)).await?;
        let mut scheduled = Vec::with_capacity(listed.len());
        for secret in listed {
            let (deletion_date, scheduled_now) = match secret.deleted_date {
                Some(date) => (date, false),
                None => match self
                    .secrets
                    .schedule_deletion(&secret.arn, recovery_window_days)
                    .await?
                {
                    Some(date) => (date, true),
                    // Scheduled in the meantime by someone else: read back what was set.
                    None => (
                        self.secrets
                            .list_tagged(&Self::secret_tags(unit))
                            .await?
                            .into_iter()
                            .find(|s| s.arn == secret.arn)
                            .and_then(|s| s.deleted_date)
                            .unwrap_or_else(|| "unknown".into()),
                        false,
                    ),
                },
            };
            tracing::info!(secret = %secret.name, %deletion_date, scheduled_now, "secret scheduled for deletion");
            scheduled.push(ScheduledSecret {
                name: secret.name,
                arn: secret.arn,
                deletion_date,
                scheduled_now,
            });
        }
        Ok(scheduled)
    }

    /// Checks that the unit is gone from AWS: no live stack carries its tags, and every secret
    /// of the unit Secrets Manager still lists is scheduled for deletion (each with its date);
    /// a secret not scheduled is a failed check. Read-only; the result serialises to JSON for
    /// the decommission event.
    #[tracing::instrument(skip_all, fields(unit = %unit.stack_name()))]
    pub async fn prove_unit_removed(&self, unit: &UnitIdentity) -> Result<RemovalProof> {
        let find = self.find_tags(unit)?;
        let tags = find
            .iter()
            .map(Tag::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mut checks = Vec::new();
        let stack = self.driver.find_by_tags(&find).await?;
        checks.push(RemovalCheck {
            name: "no live stack".into(),
            passed: stack.is_none(),
            detail: match &stack {
                None => format!("no live stack carries the tags {tags}"),
                Some(s) => format!(
                    "stack {} ({}) is {} and carries the tags {tags}",
                    s.stack_name, s.stack_id, s.status
                ),
            },
        });
        let tags = Self::secret_tags(unit);
        let listed = self.secrets.list_tagged(&tags).await?;
        checks.push(RemovalCheck {
            name: "secrets listed".into(),
            passed: true,
            detail: format!(
                "{} secret(s) tagged {} and {} (scheduled ones included; none once the \
                 recovery windows have passed)",
                listed.len(),
                tags[1],
                tags[0]
            ),
        });
        let mut secrets = Vec::new();
        for secret in listed {
            checks.push(RemovalCheck {
                name: format!("secret {} scheduled for deletion", secret.name),
                passed: secret.deleted_date.is_some(),
                detail: match &secret.deleted_date {
                    Some(date) => format!("{} deletion date {date}", secret.arn),
                    None => format!("{} is live: not scheduled for deletion", secret.arn),
                },
            });
            if let Some(deletion_date) = secret.deleted_date {
                secrets.push(ScheduledSecret {
                    name: secret.name,
                    arn: secret.arn,
                    deletion_date,
                    scheduled_now: false,
                });
            }
        }
        let proof = RemovalProof::new(
            unit.stack_name(),
            checks,
            secrets,
            self.retained_resources()?,
        );
        tracing::info!(passed = proof.passed, "unit removal checked");
        Ok(proof)
    }
}

/// The result of [`AwsStage::delete_unit_stack`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackDeletion {
    pub stack_name: String,
    /// The stack found by tag; `None` when there was none.
    pub stack_id: Option<String>,
    pub outcome: DeletionOutcome,
}

impl StackDeletion {
    /// Whether this call sent the `DeleteStack` (the one deletion to record).
    pub fn deleted_now(&self) -> bool {
        self.outcome == DeletionOutcome::Deleted
    }
}

/// Tags as a map, for display.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<&str, &str> {
    tags.iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect()
}

#[cfg(test)]
mod tests;
