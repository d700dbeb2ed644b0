//! Berth's provisioning steps: the [`Provisioner`] runs each step of a run (berth-runs) against
//! the real systems — the unit's CloudFormation stack and secrets through berth-aws, the Helm
//! values rendered by berth-blueprint, the project, namespace and charts through berth-rancher —
//! and [`WorkerSettings`] reads what a worker needs from `BERTH_*` variables. The server (and
//! the standalone `berth-engine-worker` binary) runs `berth_runs::Engine` with it. Kept apart
//! from berth-runs so the web pages, which only read and operate runs, never compile the cloud
//! SDKs. See `docs/engine.md`.

mod lifecycle;
mod planner;
mod provisioner;
mod settings;

pub use provisioner::{Provisioner, ProvisionerSettings};
pub use settings::{templates_dir, WorkerSettings, Workers};
