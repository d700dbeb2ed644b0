//! Plans: what approving a request will build (computed in the background), refreshing one,
//! and the plan a run executed.

use berth_domain::plan::CapacityFigures;
use berth_domain::{PlanDocument, PlanStatus};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: Uuid,
    pub request_id: Uuid,
    pub environment_id: Uuid,
    pub status: PlanStatus,
    /// Why it was computed, in words.
    pub reason: String,
    pub created_at: Stamp,
    pub finished_at: Option<Stamp>,
    pub hash: Option<String>,
    pub error: Option<String>,
    pub document: Option<PlanDocument>,
    /// The capacity line with today's committed quotas (what an approval checks).
    pub capacity: Option<CapacityFigures>,
    /// The viewer may ask for a fresh plan (an admin, while the request awaits a decision).
    pub can_refresh: bool,
}

impl PlanView {
    pub fn short_hash(&self) -> Option<&str> {
        self.hash.as_deref().map(|h| &h[..12.min(h.len())])
    }

    pub fn over_capacity(&self) -> bool {
        self.capacity.as_ref().is_some_and(|c| !c.fits())
    }
}

#[cfg(feature = "ssr")]
async fn view_of(
    s: &super::guard::Services,
    p: berth_runs::plans::PlanRecord,
    actor: &berth_domain::Actor,
) -> Result<PlanView, AppError> {
    use berth_runs::plans::PlanReason;
    let awaiting = berth_db::requests::get_request(&s.pool, p.request_id)
        .await?
        .is_some_and(|r| r.status == berth_domain::RequestStatus::Submitted);
    let can_refresh = awaiting
        && berth_domain::policy::authorize(Some(actor), berth_domain::Action::RefreshPlan).is_ok();
    let capacity = match &p.document {
        Some(doc) => {
            let mut conn = s.pool.acquire().await.map_err(berth_db::DbError::from)?;
            let committed = berth_runs::plans::committed_quota(&mut conn, p.environment_id).await?;
            Some(doc.capacity.with_committed(committed))
        }
        None => None,
    };
    let reason = match (p.reason, p.requested_by_name) {
        (PlanReason::Submitted, _) => "computed when the request was submitted".to_owned(),
        (PlanReason::Refresh, Some(by)) => format!("refreshed by {by}"),
        (PlanReason::Refresh, None) => "refreshed".to_owned(),
        (PlanReason::Stale, _) => {
            "recomputed: the plan approved earlier was out of date".to_owned()
        }
    };
    Ok(PlanView {
        id: p.id,
        request_id: p.request_id,
        environment_id: p.environment_id,
        status: p.status,
        reason,
        created_at: p.created_at.into(),
        finished_at: p.finished_at.map(Into::into),
        hash: p.hash,
        error: p.error,
        document: p.document,
        capacity,
        can_refresh,
    })
}

/// The request's current plan (`None` for requests from before plans existed).
#[server(endpoint = "get_request_plan", output = super::codec::JsonOut)]
pub async fn get_request_plan(request_id: Uuid) -> Result<Option<PlanView>, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        match berth_runs::plans::current_plan(&s.pool, request_id).await? {
            Some(p) => Ok(Some(view_of(&s, p, &actor).await?)),
            None => Ok(None),
        }
    })
    .await
}

/// One plan by id (the plan a run executed, for auditors).
#[server(endpoint = "get_plan", output = super::codec::JsonOut)]
pub async fn get_plan(id: Uuid) -> Result<PlanView, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        let p = berth_runs::plans::plan_by_id(&s.pool, id)
            .await?
            .ok_or(AppError::NotFound)?;
        view_of(&s, p, &actor).await
    })
    .await
}

/// Queues a fresh plan of a request awaiting a decision (admins).
#[server(endpoint = "refresh_plan", output = super::codec::JsonOut)]
pub async fn refresh_plan(request_id: Uuid) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::RefreshPlan).await?;
        berth_runs::plans::request_plan(&s.pool, request_id, &actor).await?;
        Ok(())
    })
    .await
}
