//! Berth's provisioning runs: what pages read and operators do, and the worker loop.
//!
//! Approving a request enqueues a **run** ([`enqueue_run`], inside the approval's transaction)
//! whose **steps** form a DAG derived from the blueprint: `ensure_stack` → `read_secrets`, and
//! `ensure_namespace` beside them, then one `chart:<app>` step per blueprint app after the apps
//! it depends on. Workers ([`Engine`]) claim ready steps with `FOR UPDATE SKIP LOCKED` under a
//! lease renewed by heartbeat, run them through a [`StepExecutor`] (the real one, with the AWS
//! and Rancher clients, is `berth_provisioner::Provisioner`), and record every transition with
//! its event in the same transaction. Operators retry a failed run from the failed step or
//! cancel a run ([`retry_run`], [`cancel_run`]). This crate needs no cloud SDK, so the web
//! pages can depend on it. See `docs/engine.md`.

mod dag;
mod decide;
mod engine;
mod error;
pub mod events;
mod executor;
pub mod lifecycle;
pub mod plans;
mod step_retries;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;

pub use berth_domain::{RunStatus, StepStatus};
pub use dag::{
    decommission_steps, plan_steps, PlannedStep, StepKind, DELETE_STACK, ENSURE_NAMESPACE,
    ENSURE_STACK, PROVE_REMOVED, READ_SECRETS, REMOVE_NAMESPACE, ROLLBACK,
};
pub use decide::{decide_request, ApprovalContext, DecisionOutcome};
pub use engine::{Engine, EngineConfig, TickReport};
pub use error::EngineError;
pub use executor::{
    ApprovedPlan, ReleaseBefore, StepContext, StepError, StepExecutor, StepOutput, UnitInfo,
};
pub use plans::{PlanContext, PlanError, PlanWorker, PlanWorkerConfig, Planner};
pub use step_retries::StepRetries;
pub use store::{
    cancel_run, enqueue_run, enqueue_run_with, latest_run, releases_of, retry_run, run, run_status,
    steps_of_run, AttemptOutcome, ReleaseRecord, RunView, StepView,
};

use std::fmt;
use uuid::Uuid;

/// Identifier of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct RunId(pub Uuid);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifier of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct StepId(pub Uuid);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
