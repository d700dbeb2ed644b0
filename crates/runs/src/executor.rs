//! The boundary between the engine (durability, leases, retries) and the work of a step.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use berth_domain::{AppOverrides, PlanDocument, RequestKind};
use serde_json::Value;

use crate::{RunId, StepId, StepKind};

/// The business unit a run provisions, read from the environment and its company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    pub environment_id: uuid::Uuid,
    pub company_slug: String,
    pub company_name: String,
    pub unit_slug: String,
    pub unit_name: String,
    /// Set when the slug was used before by an environment since decommissioned: 8 hex digits
    /// that keep this unit's AWS secret names apart from the earlier unit's (docs/aws.md).
    pub incarnation: Option<String>,
    /// `small`, `medium` or `large`: the size the run's request asks for (a change's new one).
    pub size: String,
    /// The per-app overrides the run's request asks for.
    pub overrides: AppOverrides,
}

/// An app's release as it stood when the run was approved: what a failed change rolls back to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseBefore {
    pub revision: u64,
    pub chart_version: String,
}

/// Everything a step execution may use. Contains no secrets.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub run_id: RunId,
    pub step_id: StepId,
    /// `ensure_stack`, `read_secrets`, `ensure_namespace` or `chart:<app>`.
    pub name: String,
    pub kind: StepKind,
    /// The blueprint app of a `chart:` step.
    pub app: Option<String>,
    /// This attempt's number (1-based, counted over the run's life).
    pub attempt: u32,
    /// Unique per step and attempt (`<step id>:<attempt>`); checked by the engine before the
    /// executor is called, and usable by executors as a client token for external calls.
    pub idempotency_key: String,
    pub blueprint: String,
    pub blueprint_version: String,
    /// What the run's request asks for: a new unit, a change, a decommission.
    pub request_kind: RequestKind,
    pub unit: UnitInfo,
    /// Each app's release when the run was approved (empty for a new unit).
    pub releases_before: BTreeMap<String, ReleaseBefore>,
    /// Outputs of this run's succeeded steps, by step name.
    pub outputs: BTreeMap<String, Value>,
    /// This step's output from the environment's latest earlier successful run (e.g. the stack
    /// id, so a stack deleted outside Berth is reported rather than silently recreated).
    pub previous_output: Option<Value>,
    /// The plan the run's approval bound (`None` only for runs enqueued without one: the
    /// engine's own tests, and runs from before plans existed).
    pub approved: Option<ApprovedPlan>,
}

/// An approved plan, as the executor checks it before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedPlan {
    pub plan_id: uuid::Uuid,
    pub hash: String,
    pub document: Arc<PlanDocument>,
}

/// A successful step: a non-secret output for later steps and people, and log lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOutput {
    pub output: Option<Value>,
    /// Short lines for the step's log. Executors redact them; they are stored as given.
    pub log: Vec<String>,
}

/// A failed step. The message is stored and shown: it must not contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Worth trying again later (throttling, 5xx, timeouts, a cluster briefly unreachable).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (access denied, invalid input, a failed Helm release).
    #[error("{0}")]
    Permanent(String),
    /// What the step would do is no longer what was approved (says what changed): the run
    /// stops and the request awaits a decision on a fresh plan.
    #[error("{0}")]
    NeedsReapproval(String),
    /// Failed, and what it had started was put back by the system acting on it (a
    /// CloudFormation update rolled back): nothing of the unit changed.
    #[error("{0}")]
    RolledBack(String),
}

impl StepError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StepError::Transient(_))
    }
}

/// Runs one step. Implementations must be idempotent, reconcile-style: look at what exists
/// before creating, so that a step repeated after a crash or an expired lease does no harm.
pub trait StepExecutor: Send + Sync + 'static {
    fn execute(
        &self,
        step: &StepContext,
    ) -> impl Future<Output = Result<StepOutput, StepError>> + Send;

    /// Called when a run this worker touched has finished (any way), to drop in-memory state
    /// such as secrets.
    fn run_finished(&self, _run: RunId) {}
}

/// One executor shared by the engine and the plan worker.
impl<T: StepExecutor> StepExecutor for Arc<T> {
    fn execute(
        &self,
        step: &StepContext,
    ) -> impl Future<Output = Result<StepOutput, StepError>> + Send {
        (**self).execute(step)
    }

    fn run_finished(&self, run: RunId) {
        (**self).run_finished(run)
    }
}
