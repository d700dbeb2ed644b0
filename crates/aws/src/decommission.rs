//! Decommissioning a unit: what a stack deletion keeps (read from the template), the secrets'
//! scheduled deletion, and the proof that the unit is gone.

use serde::{Deserialize, Serialize};

use crate::error::{AwsError, Result};

/// A resource the template keeps when the stack is deleted (`DeletionPolicy` `Retain`,
/// `RetainExceptOnCreate` or `Snapshot`), for the decommission plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedResource {
    pub logical_id: String,
    pub resource_type: String,
    pub deletion_policy: String,
    /// The template's `UpdateReplacePolicy`, when it has one.
    pub update_replace_policy: Option<String>,
    /// The template condition the resource exists under (e.g. only when the stack creates
    /// the bucket), when it has one.
    pub condition: Option<String>,
    /// Why it is kept: the resource's `Metadata.berth.retain-reason` in the template, or the
    /// policy itself when the template gives no reason.
    pub why: String,
}

/// The resources of `template` (YAML or JSON) that a stack deletion keeps, in template order.
pub fn retained_resources(template: &str) -> Result<Vec<RetainedResource>> {
    let doc: serde_norway::Value = serde_norway::from_str(template)
        .map_err(|e| AwsError::InvalidInput(format!("template is not YAML: {e}")))?;
    let resources = doc
        .get("Resources")
        .and_then(serde_norway::Value::as_mapping)
        .ok_or_else(|| AwsError::InvalidInput("template has no Resources".into()))?;
    let text = |v: Option<&serde_norway::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let mut kept = Vec::new();
    for (id, resource) in resources {
        let Some(policy) = text(resource.get("DeletionPolicy")) else {
            continue;
        };
        if policy == "Delete" {
            continue;
        }
        let logical_id = id.as_str().unwrap_or_default().to_owned();
        let reason = text(
            resource
                .get("Metadata")
                .and_then(|m| m.get("berth"))
                .and_then(|b| b.get("retain-reason")),
        );
        let why = match (reason, policy.as_str()) {
            (Some(reason), _) => reason,
            (None, "RetainExceptOnCreate") => {
                "DeletionPolicy RetainExceptOnCreate: kept when the stack is deleted".into()
            }
            (None, other) => format!("DeletionPolicy {other}: kept when the stack is deleted"),
        };
        kept.push(RetainedResource {
            logical_id,
            resource_type: text(resource.get("Type")).unwrap_or_default(),
            deletion_policy: policy,
            update_replace_policy: text(resource.get("UpdateReplacePolicy")),
            condition: text(resource.get("Condition")),
            why,
        });
    }
    Ok(kept)
}

/// The smallest and largest recovery window Secrets Manager accepts.
pub const RECOVERY_WINDOW_DAYS: std::ops::RangeInclusive<u16> = 7..=30;

/// One of the unit's secrets after [`crate::AwsStage::schedule_unit_secret_deletion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSecret {
    pub name: String,
    pub arn: String,
    /// RFC 3339. For a secret this call scheduled: `DeleteSecret`'s `DeletionDate` (the end of
    /// the recovery window). For one scheduled earlier: the `DeletedDate` Secrets Manager lists
    /// for it.
    pub deletion_date: String,
    /// Whether this call scheduled it (`false`: it already was, and was left as it was).
    pub scheduled_now: bool,
}

/// One check of a [`RemovalProof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Evidence that a unit's AWS resources are gone or on their way out, for the decommission
/// event: serialises to JSON as it is (no secret values; names, ARNs and dates only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalProof {
    /// `berth-<company>-<unit>`.
    pub stack_name: String,
    /// Whether every check passed.
    pub passed: bool,
    pub checks: Vec<RemovalCheck>,
    /// The unit's secrets as found, each scheduled for deletion when the proof passes.
    pub secrets: Vec<ScheduledSecret>,
    /// What the template keeps on purpose (not a failed check): e.g. the data bucket.
    pub retained: Vec<RetainedResource>,
}

impl RemovalProof {
    pub(crate) fn new(
        stack_name: String,
        checks: Vec<RemovalCheck>,
        secrets: Vec<ScheduledSecret>,
        retained: Vec<RetainedResource>,
    ) -> Self {
        Self {
            stack_name,
            passed: checks.iter().all(|c| c.passed),
            checks,
            secrets,
            retained,
        }
    }

    /// The checks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &RemovalCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BUSINESS_UNIT_TEMPLATE;

    #[test]
    fn the_unit_template_keeps_its_bucket_and_secrets() {
        let kept = retained_resources(BUSINESS_UNIT_TEMPLATE).unwrap();
        let ids: Vec<(&str, &str, &str)> = kept
            .iter()
            .map(|r| {
                (
                    r.logical_id.as_str(),
                    r.resource_type.as_str(),
                    r.deletion_policy.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "RegistrySecret",
                    "AWS::SecretsManager::Secret",
                    "RetainExceptOnCreate"
                ),
                (
                    "OAuthClientSecret",
                    "AWS::SecretsManager::Secret",
                    "RetainExceptOnCreate"
                ),
                (
                    "DatabaseSecret",
                    "AWS::SecretsManager::Secret",
                    "RetainExceptOnCreate"
                ),
                ("DataBucket", "AWS::S3::Bucket", "Retain"),
                (
                    "S3CredentialsSecret",
                    "AWS::SecretsManager::Secret",
                    "RetainExceptOnCreate"
                ),
            ]
        );
        for r in &kept {
            assert_eq!(r.update_replace_policy.as_deref(), Some("Retain"), "{r:?}");
            assert!(
                !r.why.is_empty() && !r.why.starts_with("DeletionPolicy"),
                "{r:?}"
            );
        }
        let bucket = kept.iter().find(|r| r.logical_id == "DataBucket").unwrap();
        assert_eq!(bucket.condition.as_deref(), Some("CreateBucket"));
        assert!(bucket.why.contains("outlives"), "{bucket:?}");
    }

    #[test]
    fn retention_is_read_from_the_template_not_assumed() {
        let template = "Resources:\n  A:\n    Type: AWS::SNS::Topic\n  B:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain\n  C:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete\n  D:\n    Type: AWS::EC2::Volume\n    DeletionPolicy: Snapshot\n    Properties:\n      Size: !Ref Size\n";
        let kept = retained_resources(template).unwrap();
        let ids: Vec<_> = kept.iter().map(|r| r.logical_id.as_str()).collect();
        assert_eq!(ids, ["B", "D"]);
        assert_eq!(
            kept[0].why,
            "DeletionPolicy Retain: kept when the stack is deleted"
        );
        assert!(retained_resources("Resources: [").is_err());
        assert!(retained_resources("Outputs: {}").is_err());
    }

    #[test]
    fn a_proof_passes_only_when_every_check_does() {
        let check = |passed| RemovalCheck {
            name: "x".into(),
            passed,
            detail: String::new(),
        };
        let proof = RemovalProof::new("s".into(), vec![check(true), check(true)], vec![], vec![]);
        assert!(proof.passed);
        let proof = RemovalProof::new("s".into(), vec![check(true), check(false)], vec![], vec![]);
        assert!(!proof.passed);
        assert_eq!(proof.failed().count(), 1);
        let json = serde_json::to_value(&proof).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][1]["passed"], false);
    }
}
