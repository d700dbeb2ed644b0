//! `GET /api/v1/audit/verify`: whether the company's history is intact (auditors and admins).

use axum::Json;
use berth_db::audit_chain::ChainReport;
use berth_domain::Action;
use serde::Serialize;
use utoipa::ToSchema;

use super::{caller::Caller, problem::Problem};

/// What verification of the hash-chained history found.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    /// Every event links to the one before it and matches its hash, up to the recorded head.
    pub intact: bool,
    /// In words: "intact up to event N (…)" or where and why the chain breaks.
    pub summary: String,
    /// Events that hold, from the first.
    pub intact_events: i64,
    /// The last event that holds.
    pub last_intact_event_id: Option<i64>,
    /// Where the chain breaks (absent when intact): the chain position, and the event found
    /// there (absent when it is missing).
    pub broken_at_position: Option<i64>,
    pub broken_at_event_id: Option<i64>,
    /// hash_mismatch, link_mismatch, gap, genesis_mismatch or head_mismatch.
    pub reason: Option<String>,
    /// The chain head checked, `seq=N; sha256=HEX` (absent before the first event): keep it
    /// elsewhere to check later that the chain up to it was not rewritten.
    pub head: Option<String>,
}

impl From<&ChainReport> for AuditVerification {
    fn from(report: &ChainReport) -> Self {
        let summary = crate::audit::describe(report);
        match report {
            ChainReport::Intact {
                events,
                head,
                last_event_id,
            } => Self {
                intact: true,
                summary,
                intact_events: *events,
                last_intact_event_id: *last_event_id,
                broken_at_position: None,
                broken_at_event_id: None,
                reason: None,
                head: head.as_ref().map(crate::audit::head_text),
            },
            ChainReport::Broken {
                at_seq,
                at_event_id,
                reason,
                intact_events,
                last_intact_event_id,
            } => Self {
                intact: false,
                summary,
                intact_events: *intact_events,
                last_intact_event_id: *last_intact_event_id,
                broken_at_position: Some(*at_seq),
                broken_at_event_id: *at_event_id,
                reason: serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned)),
                head: None,
            },
        }
    }
}

/// Verifies the company's whole history: each event's hash and its link to the one before.
/// Reads every event (in batches), so it takes a moment on a long history.
#[utoipa::path(
    get,
    operation_id = "verifyAudit",
    path = "/audit/verify",
    responses(
        (status = 200, body = AuditVerification),
    ),
    security(("bearer" = ["read"])),
    tag = "history"
)]
pub async fn verify(caller: Caller) -> Result<Json<AuditVerification>, Problem> {
    caller.allow(Action::ExportHistory).await?;
    let company = caller.services.company.id;
    let report = berth_db::audit_chain::verify(&caller.services.pool, company).await?;
    if !report.is_intact() {
        tracing::error!(report = %crate::audit::describe(&report), "audit chain verification failed");
    }
    Ok(Json(AuditVerification::from(&report)))
}
