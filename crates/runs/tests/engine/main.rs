//! The runs engine against a real Postgres (a fresh database per test) with a scripted
//! executor, one module per feature.

mod enqueue;
mod lifecycle;
mod operators;
mod plans;
mod retries;
mod workers;

use berth_runs::{StepStatus, StepView};

/// Each step's name and status, in display order.
fn statuses(steps: &[StepView]) -> Vec<(String, StepStatus)> {
    steps.iter().map(|s| (s.name.clone(), s.status)).collect()
}
