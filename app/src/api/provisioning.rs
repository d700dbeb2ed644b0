//! An environment's provisioning: its latest run, the run's steps (the DAG), and the unit's
//! CloudFormation stack as the run last saw it. The same snapshot is rendered on the page and
//! pushed to the browser by the live-progress stream (`/environments/{id}/progress`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Provisioning {
    /// The environment's status (it follows its latest request through provisioning).
    pub environment_status: Option<berth_domain::EnvironmentStatus>,
    pub run: Option<RunInfo>,
    pub steps: Vec<StepInfo>,
    pub stack: Option<StackInfo>,
    /// The viewer may retry or cancel the run (an admin).
    pub can_operate: bool,
    /// The environment's latest event: it makes every recorded change a new snapshot, so the
    /// live stream also tells pages about plans computed and requests decided.
    pub last_event: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: Uuid,
    pub status: berth_domain::RunStatus,
    pub blueprint: String,
    pub blueprint_version: String,
    pub created_at: Stamp,
    pub finished_at: Option<Stamp>,
    pub duration_secs: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub name: String,
    pub label: String,
    pub status: berth_domain::StepStatus,
    pub depends_on: Vec<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// For chart steps: the chart and the version the blueprint asks for ("influxdb 4.3.2").
    pub chart: Option<String>,
    /// For deployed charts: what Rancher reports (version and Helm revision).
    pub deployed: Option<String>,
    pub started_at: Option<Stamp>,
    pub duration_secs: Option<i64>,
    pub blocked_reason: Option<String>,
    pub log: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackInfo {
    pub name: String,
    pub status: String,
    /// The last change set's summary ("create: 9 to add").
    pub plan: String,
    pub changes: Vec<StackChange>,
    pub resources: Vec<StackResourceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackChange {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackResourceInfo {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: String,
}

/// The provisioning snapshot of one environment.
#[server(endpoint = "get_provisioning", output = super::codec::JsonOut)]
pub async fn get_provisioning(environment_id: Uuid) -> Result<Provisioning, AppError> {
    use super::guard;
    guard::respond(async move {
        // Read the context before the first await: SSR resources lose it across awaits.
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        snapshot(&s, environment_id, &actor).await
    })
    .await
}

/// Retries the environment's failed run from its failed step (`action = "retry"`) or cancels
/// its live run (`"cancel"`); a reason is required and recorded with who did it. Admins only.
#[server(endpoint = "operate_run", output = super::codec::JsonOut)]
pub async fn operate_run(run_id: Uuid, action: String, reason: String) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::OperateRuns).await?;
        let run = berth_runs::RunId(run_id);
        match action.as_str() {
            "retry" => berth_runs::retry_run(&s.pool, run, &actor, &reason).await?,
            "cancel" => berth_runs::cancel_run(&s.pool, run, &actor, &reason).await?,
            other => return Err(AppError::Invalid(format!("unknown action '{other}'"))),
        }
        Ok(())
    })
    .await
}

/// Builds the snapshot for `actor`; the caller has checked they may read environments.
#[cfg(feature = "ssr")]
pub async fn snapshot(
    s: &super::guard::Services,
    environment_id: Uuid,
    actor: &berth_domain::Actor,
) -> Result<Provisioning, AppError> {
    let snapshot = shared_snapshot(s, environment_id).await?;
    Ok(Provisioning {
        can_operate: may_operate(actor),
        ..snapshot
    })
}

/// Whether `actor` is offered retry and cancel: the one part of a snapshot that depends on
/// who reads it.
#[cfg(feature = "ssr")]
pub fn may_operate(actor: &berth_domain::Actor) -> bool {
    berth_domain::policy::authorize(Some(actor), berth_domain::Action::OperateRuns).is_ok()
}

/// The snapshot as everyone sees it, with `can_operate` false: live streams read it once per
/// change and share it, whoever is watching.
#[cfg(feature = "ssr")]
pub async fn shared_snapshot(
    s: &super::guard::Services,
    environment_id: Uuid,
) -> Result<Provisioning, AppError> {
    let can_operate = false;
    let environment = berth_db::requests::get_environment(&s.pool, environment_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let environment_status = Some(environment.status);
    let last_event = berth_db::history::latest_event_id(&s.pool, environment_id).await?;
    let Some(run) = berth_runs::latest_run(&s.pool, environment_id).await? else {
        return Ok(Provisioning {
            environment_status,
            can_operate,
            last_event,
            ..Provisioning::default()
        });
    };
    let steps = berth_runs::steps_of_run(&s.pool, run.id).await?;
    let blueprint = s.templates.blueprint(&run.blueprint);
    let stack = steps
        .iter()
        .find(|st| st.kind == berth_runs::StepKind::EnsureStack)
        .and_then(|st| st.output.as_ref())
        .map(stack_info);
    let steps = steps
        .into_iter()
        .map(|st| {
            let chart = st.app.as_deref().and_then(|app| {
                blueprint
                    .and_then(|b| b.app(app))
                    .map(|a| format!("{} {}", a.chart.chart, a.chart.version))
            });
            let deployed = st.output.as_ref().and_then(|o| {
                let version = o["chart_version"].as_str()?;
                Some(match o["revision"].as_i64() {
                    Some(rev) => format!("{version} (revision {rev})"),
                    None => version.to_owned(),
                })
            });
            StepInfo {
                label: step_label(st.kind, st.app.as_deref()),
                status: st.status,
                depends_on: st.depends_on,
                attempts: st.attempts,
                max_attempts: st.max_attempts,
                chart,
                deployed,
                started_at: st.started_at.map(Into::into),
                duration_secs: elapsed(st.started_at, st.finished_at),
                blocked_reason: st.blocked_reason,
                log: st.log,
                error: st.error,
                name: st.name,
            }
        })
        .collect();
    Ok(Provisioning {
        environment_status,
        run: Some(RunInfo {
            id: run.id.0,
            status: run.status,
            blueprint: run.blueprint,
            blueprint_version: run.blueprint_version,
            created_at: run.created_at.into(),
            finished_at: run.finished_at.map(Into::into),
            duration_secs: elapsed(run.started_at, run.finished_at),
            error: run.error,
        }),
        steps,
        stack,
        can_operate,
        last_event,
    })
}

#[cfg(feature = "ssr")]
fn step_label(kind: berth_runs::StepKind, app: Option<&str>) -> String {
    use berth_runs::StepKind;
    match kind {
        StepKind::EnsureStack => "AWS: CloudFormation stack".into(),
        StepKind::ReadSecrets => "AWS: read the unit's secrets".into(),
        StepKind::EnsureNamespace => "Rancher: project and namespace".into(),
        StepKind::DeployChart => format!("Chart {}", app.unwrap_or("?")),
        StepKind::Rollback => "Rollback of the apps the change touched".into(),
        StepKind::UninstallChart => format!("Remove {}", app.unwrap_or("?")),
        StepKind::RemoveNamespace => "Rancher: remove the namespace and project".into(),
        StepKind::DeleteStack => "AWS: delete the stack, schedule the secrets' deletion".into(),
        StepKind::ProveRemoved => "Proof: nothing of the unit remains".into(),
    }
}

/// Seconds from start to finish, or to now while running.
#[cfg(feature = "ssr")]
fn elapsed(start: Option<time::OffsetDateTime>, end: Option<time::OffsetDateTime>) -> Option<i64> {
    let start = start?;
    let end = end.unwrap_or_else(time::OffsetDateTime::now_utc);
    Some((end - start).whole_seconds().max(0))
}

/// The stack part of the `ensure_stack` step's output (ids, types and statuses only).
#[cfg(feature = "ssr")]
fn stack_info(output: &serde_json::Value) -> StackInfo {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let list = |key: &str| output[key].as_array().cloned().unwrap_or_default();
    StackInfo {
        name: text(&output["stack_name"]),
        status: text(&output["stack_status"]),
        plan: text(&output["plan"]),
        changes: list("changes")
            .iter()
            .map(|c| StackChange {
                action: text(&c["action"]),
                logical_id: text(&c["logical_id"]),
                resource_type: text(&c["resource_type"]),
            })
            .collect(),
        resources: list("resources")
            .iter()
            .map(|r| StackResourceInfo {
                logical_id: text(&r["logical_id"]),
                resource_type: text(&r["resource_type"]),
                physical_id: r["physical_id"].as_str().map(str::to_owned),
                status: text(&r["status"]),
            })
            .collect(),
    }
}
