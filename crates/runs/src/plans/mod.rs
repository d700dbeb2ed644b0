//! Plans: what an approval will build, computed in the background by a [`Planner`] (the real
//! one, with the AWS and Rancher clients, is `berth_provisioner::Provisioner`) and stored
//! immutable with its content hash. A request gets a plan when it is submitted and again when an
//! admin refreshes it or a worker finds the approved one out of date; its newest plan is its
//! current one. The approval binds the hash the admin saw ([`crate::decide_request`]), and each
//! run carries the plan it executes. See `docs/plans.md`.

mod store;
mod worker;

use std::future::Future;

use std::collections::BTreeMap;

use berth_domain::{PlanDocument, Quota, RequestKind, RequestSpec};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::executor::{ReleaseBefore, UnitInfo};

pub(crate) use store::enqueue_plan;
pub use store::{
    committed_quota, current_plan, plan_by_id, plan_for_run, request_plan, submit_request,
    PlanReason, PlanRecord,
};
pub use worker::{PlanWorker, PlanWorkerConfig};

/// Everything a planner needs about the request it plans.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub plan_id: Uuid,
    pub request_id: Uuid,
    /// A new unit, a change (planned as a diff from `current`) or a decommission.
    pub kind: RequestKind,
    pub spec: RequestSpec,
    /// The environment's specification now, for a change or a decommission.
    pub current: Option<RequestSpec>,
    /// What each app runs now (empty for a new unit).
    pub releases: BTreeMap<String, ReleaseBefore>,
    pub unit: UnitInfo,
    pub blueprint: String,
    /// The quotas of every live environment except this one.
    pub committed: Quota,
    /// The unit's stack id from its latest successful run, if any.
    pub known_stack_id: Option<String>,
}

/// Why a plan could not be computed. The message is stored and shown: no secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Worth trying again (throttling, a cluster briefly unreachable).
    #[error("{0}")]
    Transient(String),
    /// The plan fails as it stands (a template error, an unknown chart version, an input AWS
    /// refuses); the request cannot be approved until a refreshed plan succeeds.
    #[error("{0}")]
    Invalid(String),
}

/// Computes a plan. Must never create, change or leave anything behind outside Berth: a plan
/// reads the live state and describes what an approval would do.
pub trait Planner: Send + Sync + 'static {
    fn plan(
        &self,
        ctx: &PlanContext,
    ) -> impl Future<Output = Result<PlanDocument, PlanError>> + Send;
}

/// The content hash of a plan: SHA-256 over its canonical JSON (struct fields in declaration
/// order, maps sorted by key, lists in their meaningful order) without the capacity figures,
/// which move whenever any other environment changes and are re-checked at approval instead.
pub fn plan_hash(doc: &PlanDocument) -> String {
    #[derive(serde::Serialize)]
    struct Hashed<'a> {
        request_id: &'a Uuid,
        inputs: &'a berth_domain::plan::PlanInputs,
        aws: &'a berth_domain::plan::AwsPlan,
        kubernetes: &'a berth_domain::plan::KubernetesPlan,
        charts: &'a [berth_domain::plan::ChartPlan],
        digests: &'a berth_domain::plan::StageDigests,
        #[serde(skip_serializing_if = "Option::is_none")]
        change: &'a Option<berth_domain::plan::ChangeDiff>,
        #[serde(skip_serializing_if = "Option::is_none")]
        removal: &'a Option<berth_domain::plan::RemovalPlan>,
    }
    let hashed = Hashed {
        request_id: &doc.request_id,
        inputs: &doc.inputs,
        aws: &doc.aws,
        kubernetes: &doc.kubernetes,
        charts: &doc.charts,
        digests: &doc.digests,
        change: &doc.change,
        removal: &doc.removal,
    };
    let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

impl<T: Planner> Planner for std::sync::Arc<T> {
    fn plan(
        &self,
        ctx: &PlanContext,
    ) -> impl Future<Output = Result<PlanDocument, PlanError>> + Send {
        (**self).plan(ctx)
    }
}
