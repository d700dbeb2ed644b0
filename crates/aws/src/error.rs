//! Errors of the AWS stage. Messages name the stack, resource, operation or ARN involved and
//! never carry a secret value.

use std::time::Duration;

// Every `aws_sdk_*` crate re-exports these same two types (from aws-smithy-runtime-api and
// aws-smithy-types), so one mapper serves CloudFormation and Secrets Manager alike.
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};

/// An error reported by an AWS API call, reduced to what is safe to log and show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct ApiError {
    /// The API operation, e.g. `CreateChangeSet`.
    pub operation: &'static str,
    /// The AWS error code (`ValidationError`, `AccessDenied`, …), when the service sent one.
    pub code: Option<String>,
    /// The service's message, or a description of the transport failure.
    pub message: String,
}

impl ApiError {
    pub fn new(operation: &'static str, code: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: code.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Reduces an SDK error of any AWS service to its code and message; transport, timeout and
    /// response failures (which the SDK has already retried) keep their chain of causes.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        if let Some(service) = err.as_service_error() {
            return Self::new(
                operation,
                service.code(),
                service.message().unwrap_or("no message"),
            );
        }
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(operation, None, message)
    }

    /// Access denied by IAM (the message names the action and resource, as AWS writes it).
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
        )
    }

    /// CloudFormation's answer for a stack name or id that does not exist.
    pub fn is_stack_missing(&self) -> bool {
        self.code.as_deref() == Some("ValidationError") && self.message.contains("does not exist")
    }
}

/// Everything that can go wrong in the AWS stage.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// Invalid input caught before anything reached AWS.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The SDK configuration is unusable (no region, bad endpoint, …).
    #[error("AWS configuration: {0}")]
    Config(String),

    /// IAM refused a call; the message names the action and the resource.
    #[error("access denied on {operation} for {resource}: {message}")]
    AccessDenied {
        operation: &'static str,
        resource: String,
        message: String,
    },

    /// Any other API failure (after the SDK's own retries of throttling and 5xx).
    #[error("AWS call for {resource} failed: {source}")]
    Api {
        resource: String,
        #[source]
        source: ApiError,
    },

    /// A create or update ended in a failed or rolled-back state.
    #[error("stack {stack} ended in {status}: {summary}")]
    StackFailed {
        stack: String,
        status: String,
        /// Short human summary from the stack events: resource, type, status and reason.
        summary: String,
    },

    /// An update failed and CloudFormation rolled it back (`UPDATE_ROLLBACK_COMPLETE`): the
    /// stack is back at its previous template and parameters and stays usable; a later update
    /// proceeds as usual. Not retryable as is: the same update would fail the same way.
    #[error(
        "update of stack {stack} failed and was rolled back to its previous template and \
         parameters (the stack is usable): {summary}"
    )]
    UpdateRolledBack {
        stack: String,
        /// The resources that failed, root cause first (empty when the events name none).
        failures: Vec<crate::driver::ResourceFailure>,
        /// One line from the stack events: resource, type, status and reason.
        summary: String,
    },

    /// The stack is in a state Berth will not touch without a person (e.g.
    /// `UPDATE_ROLLBACK_FAILED`, `DELETE_FAILED`). Permanent: retrying does not help.
    #[error(
        "stack {stack} is in {status} and needs manual attention: {hint}{}",
        cause.as_deref().map(|c| format!(" (cause: {c})")).unwrap_or_default()
    )]
    StackNeedsAttention {
        stack: String,
        status: String,
        hint: String,
        /// What the stack events say went wrong, when they say it.
        cause: Option<String>,
    },

    /// A step was asked for in a state where it would do harm (e.g. scheduling a unit's
    /// secrets for deletion while its stack still uses them).
    #[error("{0}")]
    Precondition(String),

    /// The stack Berth created earlier no longer exists; it is reported, not recreated.
    #[error("stack {stack_id} was deleted outside Berth")]
    StackVanished { stack_id: String },

    /// A stack Berth was about to update or delete (found by its recorded id or by its name)
    /// whose `berth:company`/`berth:unit` tags do not name the unit: another unit's, another
    /// company's or another tool's stack. Never touched; permanent (a person has to look).
    #[error(
        "stack {stack} is not this unit's: its tags say {found}, the unit is {expected}; Berth \
         neither updates nor deletes it"
    )]
    NotOurStack {
        stack: String,
        /// The unit's `berth:company` and `berth:unit` tags.
        expected: String,
        /// The stack's (`none` when it has neither).
        found: String,
    },

    /// Two stacks carry the tags of one business unit.
    #[error("two stacks carry the tag {tag}: {first} and {second}")]
    AmbiguousStacks {
        tag: String,
        first: String,
        second: String,
    },

    /// A change set could not be created for a reason other than "no changes".
    #[error("change set {change_set} for stack {stack} failed: {reason}")]
    ChangeSetFailed {
        stack: String,
        change_set: String,
        reason: String,
    },

    /// A preview cannot be made without changing the stack (see the reason).
    #[error("no preview for stack {stack} in {status}: {reason}")]
    PreviewUnavailable {
        stack: String,
        status: String,
        reason: String,
    },

    /// Waiting for a terminal state took longer than the wait policy allows.
    #[error("stack {stack} still {status} after {waited:?}")]
    WaitTimeout {
        stack: String,
        status: String,
        waited: Duration,
    },

    /// An output the next stage needs is missing from the stack.
    #[error("stack {stack} has no output {key}")]
    MissingOutput { stack: String, key: String },

    /// A secret's value is not the JSON document the template writes. The detail never
    /// contains the value.
    #[error("secret {arn} is not in the expected format: {detail}")]
    SecretFormat { arn: String, detail: String },
}

impl AwsError {
    /// Wraps an API error, turning access denials into their own variant.
    pub fn api(resource: impl Into<String>, source: ApiError) -> Self {
        let resource = resource.into();
        if source.is_access_denied() {
            AwsError::AccessDenied {
                operation: source.operation,
                resource,
                message: source.message,
            }
        } else {
            AwsError::Api { resource, source }
        }
    }

    /// Whether retrying the same step later may succeed (the pipeline's retry policy).
    pub fn is_retryable(&self) -> bool {
        match self {
            AwsError::Api { source, .. } => {
                source.code.is_none()
                    || matches!(
                        source.code.as_deref(),
                        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded")
                    )
            }
            AwsError::WaitTimeout { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = AwsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::error::ErrorMetadata;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

    #[test]
    fn service_errors_keep_code_and_message() {
        let metadata = ErrorMetadata::builder()
            .code("AccessDeniedException")
            .message("not authorized to perform: secretsmanager:GetSecretValue")
            .build();
        let err: SdkError<GetSecretValueError, ()> =
            SdkError::service_error(GetSecretValueError::generic(metadata), ());
        let api = ApiError::from_sdk("GetSecretValue", err);
        assert_eq!(
            api,
            ApiError::new(
                "GetSecretValue",
                Some("AccessDeniedException"),
                "not authorized to perform: secretsmanager:GetSecretValue"
            )
        );
        assert!(matches!(
            AwsError::api("secret s", api),
            AwsError::AccessDenied {
                operation: "GetSecretValue",
                ..
            }
        ));
    }

    #[test]
    fn transport_errors_keep_their_causes() {
        let err: SdkError<GetSecretValueError, ()> =
            SdkError::construction_failure(std::io::Error::other("no endpoint resolved"));
        let api = ApiError::from_sdk("GetSecretValue", err);
        assert_eq!(api.code, None);
        assert_eq!(
            api.message,
            "failed to construct request: no endpoint resolved"
        );
        assert!(AwsError::api("secret s", api).is_retryable());
    }
}
