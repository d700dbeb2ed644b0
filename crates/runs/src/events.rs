//! Event kinds the engine writes to the append-only `events` table (same transaction as the
//! change they describe). The timeline and exports key on these strings.

pub const RUN_ENQUEUED: &str = "run.enqueued";
pub const RUN_STARTED: &str = "run.started";
pub const RUN_SUCCEEDED: &str = "run.succeeded";
pub const RUN_FAILED: &str = "run.failed";
pub const RUN_CANCELLED: &str = "run.cancelled";
pub const RUN_RETRIED: &str = "run.retried";
pub const STEP_STARTED: &str = "step.started";
pub const STEP_SUCCEEDED: &str = "step.succeeded";
/// A transient failure; the step is scheduled again after a backoff.
pub const STEP_RETRYING: &str = "step.retrying";
pub const STEP_FAILED: &str = "step.failed";
/// A lease expired (worker crashed or stalled) and another worker took the step over.
pub const STEP_LEASE_EXPIRED: &str = "step.lease_expired";
pub const REQUEST_PROVISIONING: &str = "request.provisioning";
pub const REQUEST_READY: &str = "request.ready";
pub const REQUEST_FAILED: &str = "request.failed";
/// A plan was queued (details: `plan_id`, `reason`).
pub const PLAN_REQUESTED: &str = "plan.requested";
/// A plan was computed (details: `plan_id`, `hash`, a summary).
pub const PLAN_READY: &str = "plan.ready";
pub const PLAN_FAILED: &str = "plan.failed";
/// The worker found the approved plan out of date and stopped before acting; the request
/// awaits a decision on a new plan (details: `run_id`, `changed`).
pub const RUN_NEEDS_REAPPROVAL: &str = "run.needs_reapproval";
/// A change run failed after touching apps; a rollback step was added (details: `run_id`,
/// `failed`: where and why).
pub const RUN_ROLLING_BACK: &str = "run.rolling_back";
/// The rollback of a failed change finished: each app back at its revision before the run
/// (details: `run_id`, `failed`, `rolled_back`: app, revision, `rolled_back_to`).
pub const RUN_ROLLED_BACK: &str = "run.rolled_back";
/// A decommission proved the unit gone (details: `run_id`, `checks`: each check with its
/// result, `retained`: what is kept on purpose). The name and slug are free from here on.
pub const DECOMMISSIONED: &str = "decommissioned";
