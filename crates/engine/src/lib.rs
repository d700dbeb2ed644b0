//! Berth's durable provisioning engine.
//!
//! Approving a request enqueues a **run** ([`enqueue_run`], inside the approval's transaction)
//! whose **steps** form a DAG derived from the blueprint: `ensure_stack` → `read_secrets`, and
//! `ensure_namespace` beside them, then one `chart:<app>` step per blueprint app after the apps
//! it depends on. Workers ([`Engine`]) claim ready steps with `FOR UPDATE SKIP LOCKED` under a
//! lease renewed by heartbeat, run them through a [`StepExecutor`] (the real one is
//! [`Provisioner`]), and record every transition with its event in the same transaction.
//! Operators retry a failed run from the failed step or cancel a run ([`retry_run`],
//! [`cancel_run`]). See `docs/engine.md`.

mod dag;
mod decide;
mod engine;
mod error;
pub mod events;
mod executor;
mod provisioner;
mod retry;
mod settings;
mod store;

pub use dag::{plan_steps, PlannedStep, StepKind};
pub use decide::{decide_request, DecisionOutcome};
pub use engine::{Engine, EngineConfig, TickReport};
pub use error::EngineError;
pub use executor::{StepContext, StepError, StepExecutor, StepOutput, UnitInfo};
pub use provisioner::{Provisioner, ProvisionerSettings};
pub use retry::RetryPolicy;
pub use settings::{templates_dir, WorkerSettings};
pub use store::{
    cancel_run, enqueue_run, enqueue_run_with, latest_run, retry_run, run_status, steps_of_run,
    RunStatus, RunView, StepStatus, StepView,
};

use std::fmt;
use uuid::Uuid;

/// Identifier of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub Uuid);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifier of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId(pub Uuid);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
