//! Berth's AWS stage: one CloudFormation stack per business unit (Secrets Manager secrets,
//! an S3 IAM user, tags), created and updated through change sets, found again by tag, and
//! its secrets read back into redacting types. The registry password is never a stack
//! parameter: it is kept in the company's secret and read by the template through a
//! `{{resolve:secretsmanager:…}}` reference ([`AwsStage::store_registry_password`]).
//!
//! The pipeline calls [`AwsStage`]: [`AwsStage::ensure_unit_stack`] (idempotent "ensure the
//! stack is at the desired template and parameters"), [`AwsStage::read_unit_secrets`],
//! [`AwsStage::preview_unit_stack`] and [`AwsStage::desired_fingerprint`] for plans shown to
//! approvers (nothing left behind), [`AwsStage::plan_unit_stack`] / [`AwsStage::apply_plan`],
//! [`AwsStage::find_unit_stack`] for the environment page; for decommissioning
//! [`AwsStage::retained_resources`], [`AwsStage::delete_unit_stack`],
//! [`AwsStage::schedule_unit_secret_deletion`] and [`AwsStage::prove_unit_removed`]. Local emulator and real AWS are
//! chosen by standard SDK configuration only (see docs/aws.md).

pub mod api;
pub mod decommission;
pub mod driver;
pub mod error;
pub mod secrets;
pub mod settings;
pub mod stage;
pub mod status;
pub mod unit;

pub use api::{ChangeSetKind, StackResource, StackSnapshot};
pub use decommission::{
    retained_resources, RemovalCheck, RemovalProof, RetainedResource, ScheduledSecret,
    RECOVERY_WINDOW_DAYS,
};
pub use driver::{
    ChangeAction, DeletionOutcome, DesiredStack, PlannedChange, PreviewKind, PreviewParameter,
    ResourceFailure, StackPlan, StackPreview, WaitPolicy,
};
pub use error::{ApiError, AwsError};
pub use secrets::{
    registry_password_secret_name, DatabaseCredentials, OAuthClient, RegistryCredentials,
    S3Credentials, SecretValue, StoredSecretVersion, UnitSecrets,
};
pub use settings::{load_sdk_config, AwsSettings};
pub use stage::{
    AwsStage, EnsureKind, EnsuredUnit, StackDeletion, UnitOutputs, UnitParameters, UnitStack,
    BUSINESS_UNIT_TEMPLATE,
};
pub use unit::{Tag, TagScheme, UnitIdentity, STACK_NAME_SEPARATOR};
