//! Plans: exactly what an approval will build, shown to the approver and bound to the approval
//! by its hash. The document is computed by the provisioning worker and stored as JSON; the
//! types live here so the server, the worker and the browser read one shape. Also the sizes'
//! quotas and the capacity rule an approval checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::request::{Note, Size};

/// What a size reserves on the cluster: the namespace's ResourceQuota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Quota {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub pods: u32,
}

impl Quota {
    /// Kubernetes quantity of the CPU limit ("8", "500m").
    pub fn cpu_quantity(&self) -> String {
        if self.cpu_millis.is_multiple_of(1000) {
            (self.cpu_millis / 1000).to_string()
        } else {
            format!("{}m", self.cpu_millis)
        }
    }

    /// Kubernetes quantity of the memory limit ("16Gi", "512Mi").
    pub fn memory_quantity(&self) -> String {
        if self.memory_mib.is_multiple_of(1024) {
            format!("{}Gi", self.memory_mib / 1024)
        } else {
            format!("{}Mi", self.memory_mib)
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib * 1024 * 1024
    }

    pub fn plus(self, other: Quota) -> Quota {
        Quota {
            cpu_millis: self.cpu_millis + other.cpu_millis,
            memory_mib: self.memory_mib + other.memory_mib,
            pods: self.pods + other.pods,
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPU, {} memory, {} pods",
            self.cpu_quantity(),
            self.memory_quantity(),
            self.pods
        )
    }
}

/// Per-container defaults of the namespace's LimitRange (what a container without its own
/// requests and limits gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRange {
    pub default_request: Quota,
    pub default_limit: Quota,
}

impl Size {
    /// The namespace quota of this size; the foundation chart's values carry it.
    pub fn quota(self) -> Quota {
        let (cpu, gib, pods) = match self {
            Size::Small => (4, 8, 40),
            Size::Medium => (8, 16, 80),
            Size::Large => (16, 32, 160),
        };
        Quota {
            cpu_millis: cpu * 1000,
            memory_mib: gib * 1024,
            pods,
        }
    }

    /// The namespace's per-container defaults.
    pub fn limit_range(self) -> LimitRange {
        let (req_cpu, req_mib, lim_cpu, lim_mib) = match self {
            Size::Small => (100, 128, 500, 512),
            Size::Medium => (250, 256, 1000, 1024),
            Size::Large => (500, 512, 2000, 2048),
        };
        LimitRange {
            default_request: Quota {
                cpu_millis: req_cpu,
                memory_mib: req_mib,
                pods: 0,
            },
            default_limit: Quota {
                cpu_millis: lim_cpu,
                memory_mib: lim_mib,
                pods: 0,
            },
        }
    }
}

/// Where a plan stands. Stored as text.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlanStatus {
    /// Queued or being computed by a worker.
    Computing,
    Ready,
    Failed,
}

/// The marker shown instead of every secret value.
pub const REDACTED: &str = "[redacted]";

/// Everything an approval of a request builds, in readable sections. Contains no secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub request_id: Uuid,
    pub inputs: PlanInputs,
    pub aws: AwsPlan,
    pub kubernetes: KubernetesPlan,
    /// In dependency (install) order.
    pub charts: Vec<ChartPlan>,
    /// Not covered by the hash: re-checked against live figures when the admin approves.
    pub capacity: CapacityFigures,
    /// Fingerprints of what each stage will make, recomputed by the worker before it acts.
    pub digests: StageDigests,
    /// A change: what differs from what runs now (absent for a new unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeDiff>,
    /// A decommission: what is removed and what is kept (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<RemovalPlan>,
}

/// What a change request changes, and only that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDiff {
    /// The fields of the spec that differ (size, description, owner, version, overrides).
    pub fields: Vec<FieldChange>,
    pub quota_before: Quota,
    pub quota_after: Quota,
    /// Every app of the blueprint, in install order, with what the change does to it.
    pub apps: Vec<AppChange>,
}

impl ChangeDiff {
    /// The apps the change upgrades, installs or removes.
    pub fn touched(&self) -> impl Iterator<Item = &AppChange> {
        self.apps
            .iter()
            .filter(|a| a.action != AppAction::Unchanged)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// What a change does to one app.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AppAction {
    /// Same chart version and rendered values: left as it is.
    Unchanged,
    Upgrade,
    Install,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppChange {
    pub app: String,
    pub action: AppAction,
    pub chart_before: Option<String>,
    pub chart_after: Option<String>,
    /// The Helm revision deployed now.
    pub revision_before: Option<u64>,
    /// A unified diff of the rendered values (secrets [`REDACTED`] on both sides); empty when
    /// they are the same.
    pub values_diff: Vec<String>,
}

/// What a decommission removes, in order, and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalPlan {
    /// Helm releases, uninstalled in this order (the install order reversed).
    pub apps: Vec<String>,
    pub namespace: String,
    pub project: String,
    pub stack_name: String,
    /// The stack's resources that its deletion removes.
    pub resources: Vec<ResourceChange>,
    /// What stays on purpose, and why.
    pub retained: Vec<Retained>,
    /// Days the unit's secrets stay recoverable after the run schedules their deletion.
    pub secret_recovery_days: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    /// What it is: a logical id or a name.
    pub name: String,
    pub resource_type: String,
    pub why: String,
}

/// What the plan was computed from (besides the live state it was compared with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInputs {
    /// The request's spec as stored (name, slug, size, blueprint, ...).
    pub spec: crate::RequestSpec,
    pub blueprint: String,
    pub blueprint_version: String,
    /// SHA-256 of the blueprint file and of each values template it uses, by file name.
    pub files: BTreeMap<String, String>,
    /// SHA-256 of the CloudFormation template body.
    pub cloudformation_template: String,
    pub registry_server: String,
    pub domain: String,
    pub cluster: String,
    /// One fingerprint of the templates and settings above (not the spec): when the server's
    /// differs from a plan's, that plan is out of date.
    pub setup_digest: String,
}

/// The CloudFormation change set Berth would execute (deleted after it was read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsPlan {
    pub stack_name: String,
    /// `create`, `update` or `none` (the stack already matches).
    pub kind: String,
    pub changes: Vec<ResourceChange>,
    /// Template parameters in order; secret ones show [`REDACTED`].
    pub parameters: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `add`, `modify`, `replace`, `maybe_replace`, `remove` or `other`.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesPlan {
    pub cluster: String,
    pub cluster_id: String,
    pub project: String,
    /// The Rancher project id when it exists already.
    pub existing_project: Option<String>,
    pub namespace: String,
    pub namespace_exists: bool,
    pub quota: Quota,
    pub limit_range: LimitRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartPlan {
    pub app: String,
    pub repo: String,
    pub chart: String,
    pub version: String,
    pub depends_on: Vec<String>,
    /// The rendered values with every secret as [`REDACTED`].
    pub values: String,
}

/// Fingerprints (SHA-256 hex) of what each stage will make.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StageDigests {
    pub aws: String,
    pub kubernetes: String,
    /// By app.
    pub charts: BTreeMap<String, String>,
}

impl StageDigests {
    /// What differs from `approved`, in words for the timeline (empty when nothing does).
    pub fn changes_from(&self, approved: &StageDigests) -> Vec<String> {
        let mut out = Vec::new();
        if self.aws != approved.aws {
            out.push("the CloudFormation template, its parameters or tags".to_owned());
        }
        if self.kubernetes != approved.kubernetes {
            out.push("the project, namespace or quota".to_owned());
        }
        for (app, digest) in &self.charts {
            match approved.charts.get(app) {
                Some(d) if d == digest => {}
                Some(_) => out.push(format!("the chart or rendered values of {app}")),
                None => out.push(format!("the new app {app}")),
            }
        }
        for app in approved.charts.keys() {
            if !self.charts.contains_key(app) {
                out.push(format!("the app {app}, no longer in the blueprint"));
            }
        }
        out
    }
}

/// The cluster's room, as the plan saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityFigures {
    /// Allocatable CPU and memory as Rancher reports them.
    pub allocatable_cpu_millis: u64,
    pub allocatable_memory_mib: u64,
    /// Quotas of every live environment except this one.
    pub committed: Quota,
    /// This request's quota.
    pub requested: Quota,
}

impl CapacityFigures {
    /// `committed + requested` fits the allocatable CPU and memory; a request for no room (a
    /// decommission) always fits.
    pub fn fits(&self) -> bool {
        if self.requested == Quota::default() {
            return true;
        }
        let total = self.committed.plus(self.requested);
        total.cpu_millis <= self.allocatable_cpu_millis
            && total.memory_mib <= self.allocatable_memory_mib
    }

    /// The same figures with today's committed quotas.
    pub fn with_committed(self, committed: Quota) -> Self {
        Self { committed, ..self }
    }

    /// One line, e.g. "12 CPU of 64 after this request; 24Gi of 256Gi".
    pub fn summary(&self) -> String {
        let total = self.committed.plus(self.requested);
        let alloc = Quota {
            cpu_millis: self.allocatable_cpu_millis,
            memory_mib: self.allocatable_memory_mib,
            pods: 0,
        };
        format!(
            "{} of {} CPU and {} of {} memory with this request",
            total.cpu_quantity(),
            alloc.cpu_quantity(),
            total.memory_quantity(),
            alloc.memory_quantity()
        )
    }
}

/// A plan's content hash: 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlanHash(String);

impl PlanHash {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err("The plan's hash is missing or malformed; reload the page.".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 digits, as people compare them.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for PlanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an approver agrees to: the plan they saw, and when it exceeds the cluster's capacity,
/// their reason for approving anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTerms {
    pub plan_hash: PlanHash,
    pub capacity_override: Option<Note>,
}

impl ApprovalTerms {
    /// From the approval form: the hash field, the override box and its reason.
    pub fn parse(plan_hash: &str, override_capacity: bool, reason: &str) -> Result<Self, String> {
        let plan_hash = PlanHash::parse(plan_hash)?;
        let capacity_override = if override_capacity {
            Some(Note::parse(reason)?.ok_or_else(|| {
                "Approving over the cluster's capacity needs a reason.".to_owned()
            })?)
        } else {
            None
        };
        Ok(Self {
            plan_hash,
            capacity_override,
        })
    }
}

/// Why an approval was refused by the plan rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PlanRefusal {
    #[error("the plan is still being computed; approve once it is ready")]
    Computing,
    #[error("the plan failed ({0}); the request cannot be approved until it plans cleanly")]
    Failed(String),
    #[error("the request has no plan yet")]
    Missing,
    #[error("the plan changed since you opened this page; review the new plan")]
    Changed,
    #[error("the plan exceeds the cluster's capacity ({0}); tick the override and give a reason to approve anyway")]
    OverCapacity(String),
}

/// The approval rule: the plan must be ready, be the one the approver saw, and fit the cluster
/// unless the approver overrides with a reason.
pub fn check_approval(
    status: PlanStatus,
    hash: Option<&str>,
    error: Option<&str>,
    capacity: Option<&CapacityFigures>,
    terms: &ApprovalTerms,
) -> Result<(), PlanRefusal> {
    match status {
        PlanStatus::Computing => return Err(PlanRefusal::Computing),
        PlanStatus::Failed => {
            return Err(PlanRefusal::Failed(
                error.unwrap_or("no reason recorded").to_owned(),
            ))
        }
        PlanStatus::Ready => {}
    }
    if hash != Some(terms.plan_hash.as_str()) {
        return Err(PlanRefusal::Changed);
    }
    match capacity {
        Some(c) if !c.fits() && terms.capacity_override.is_none() => {
            Err(PlanRefusal::OverCapacity(c.summary()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn figures(alloc_cpu: u64) -> CapacityFigures {
        CapacityFigures {
            allocatable_cpu_millis: alloc_cpu * 1000,
            allocatable_memory_mib: 256 * 1024,
            committed: Size::Large.quota(),
            requested: Size::Medium.quota(),
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(Size::Medium.quota().cpu_quantity(), "8");
        assert_eq!(Size::Medium.quota().memory_quantity(), "16Gi");
        let lr = Size::Small.limit_range();
        assert_eq!(lr.default_request.cpu_quantity(), "100m");
        assert_eq!(lr.default_limit.memory_quantity(), "512Mi");
    }

    #[test]
    fn size_labels_state_the_quota() {
        for size in Size::ALL {
            let q = size.quota();
            let gib = q.memory_mib / 1024;
            let label = format!("({} CPU, {gib} GiB)", q.cpu_quantity());
            assert!(size.label().ends_with(&label), "{}", size.label());
        }
    }

    #[test]
    fn capacity_rule() {
        assert!(figures(24).fits());
        assert!(!figures(23).fits());
        assert!(figures(23).summary().contains("24 of 23 CPU"));
    }

    #[test]
    fn hashes_are_checked() {
        assert!(PlanHash::parse(H).is_ok());
        assert!(PlanHash::parse(&H.to_uppercase()).is_err());
        assert!(PlanHash::parse(&H[1..]).is_err());
        assert_eq!(PlanHash::parse(H).unwrap().short(), "0123456789ab");
    }

    #[test]
    fn approval_rule() {
        let terms = ApprovalTerms::parse(H, false, "").unwrap();
        let ok = Some(H);
        assert_eq!(
            check_approval(PlanStatus::Computing, None, None, None, &terms),
            Err(PlanRefusal::Computing)
        );
        assert!(matches!(
            check_approval(PlanStatus::Failed, None, Some("boom"), None, &terms),
            Err(PlanRefusal::Failed(m)) if m == "boom"
        ));
        let other = "f".repeat(64);
        assert_eq!(
            check_approval(PlanStatus::Ready, Some(&other), None, None, &terms),
            Err(PlanRefusal::Changed)
        );
        assert!(check_approval(PlanStatus::Ready, ok, None, Some(&figures(64)), &terms).is_ok());
        assert!(matches!(
            check_approval(PlanStatus::Ready, ok, None, Some(&figures(8)), &terms),
            Err(PlanRefusal::OverCapacity(_))
        ));
        let overridden = ApprovalTerms::parse(H, true, "burst for the launch").unwrap();
        assert!(
            check_approval(PlanStatus::Ready, ok, None, Some(&figures(8)), &overridden).is_ok()
        );
        assert!(ApprovalTerms::parse(H, true, "  ").is_err());
    }

    #[test]
    fn digest_changes_are_named() {
        let mut a = StageDigests {
            aws: "a".into(),
            kubernetes: "k".into(),
            charts: [("dsm".to_owned(), "1".to_owned())].into(),
        };
        let b = a.clone();
        assert!(a.changes_from(&b).is_empty());
        a.charts.insert("dsm".into(), "2".into());
        assert_eq!(a.changes_from(&b), ["the chart or rendered values of dsm"]);
    }
}
