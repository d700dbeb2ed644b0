//! What pages and the live-progress stream read: a run's status, an environment's latest run
//! and a run's steps.

use berth_domain::{RunStatus, StepStatus};
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dag::StepKind;
use crate::error::EngineError;
use crate::{RunId, StepId};

/// A run as stored, for pages.
#[derive(Debug, Clone)]
pub struct RunView {
    pub id: RunId,
    pub environment_id: Uuid,
    pub request_id: Uuid,
    pub status: RunStatus,
    pub blueprint: String,
    pub blueprint_version: String,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub error: Option<String>,
}

/// A step as stored, for pages and tests.
#[derive(Debug, Clone)]
pub struct StepView {
    pub id: StepId,
    pub name: String,
    pub kind: StepKind,
    pub app: Option<String>,
    pub position: i32,
    pub depends_on: Vec<String>,
    pub status: StepStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub blocked_reason: Option<String>,
    pub log: String,
    pub error: Option<String>,
    pub output: Option<Value>,
}

/// One run by id.
pub async fn run(pool: &PgPool, id: RunId) -> Result<Option<RunView>, EngineError> {
    Ok(sqlx::query_as!(
        RunView,
        r#"SELECT id AS "id: RunId", environment_id, request_id, status AS "status: RunStatus",
                  blueprint, blueprint_version, created_at, started_at, finished_at, error
           FROM runs WHERE id = $1"#,
        id.0
    )
    .fetch_optional(pool)
    .await?)
}

/// The status of a run.
pub async fn run_status(pool: &PgPool, run: RunId) -> Result<RunStatus, EngineError> {
    sqlx::query_scalar!(
        r#"SELECT status AS "status: RunStatus" FROM runs WHERE id = $1"#,
        run.0
    )
    .fetch_optional(pool)
    .await?
    .ok_or(EngineError::NotFound("run"))
}

/// The environment's newest run, if any.
pub async fn latest_run(
    pool: &PgPool,
    environment_id: Uuid,
) -> Result<Option<RunView>, EngineError> {
    Ok(sqlx::query_as!(
        RunView,
        r#"SELECT id AS "id: RunId", environment_id, request_id, status AS "status: RunStatus",
                  blueprint, blueprint_version, created_at, started_at, finished_at, error
           FROM runs WHERE environment_id = $1 ORDER BY created_at DESC, id LIMIT 1"#,
        environment_id
    )
    .fetch_optional(pool)
    .await?)
}

/// The steps of a run in display order.
pub async fn steps_of_run(pool: &PgPool, run: RunId) -> Result<Vec<StepView>, EngineError> {
    Ok(sqlx::query_as!(
        StepView,
        r#"SELECT id AS "id: StepId", name, kind AS "kind: StepKind", app, position, depends_on,
                  status AS "status: StepStatus", attempts, max_attempts, run_after, started_at,
                  finished_at, blocked_reason, log, error, output
           FROM steps WHERE run_id = $1 ORDER BY position"#,
        run.0
    )
    .fetch_all(pool)
    .await?)
}

/// What one app of an environment runs now (`environment_releases`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub app: String,
    pub release: String,
    pub chart_version: String,
    pub revision: u64,
    pub run_id: Uuid,
    pub updated_at: OffsetDateTime,
}

/// Each app's release of an environment, the least recently changed first.
pub async fn releases_of(
    pool: &PgPool,
    environment_id: Uuid,
) -> Result<Vec<ReleaseRecord>, EngineError> {
    Ok(sqlx::query!(
        "SELECT app, release, chart_version, revision, run_id, updated_at
         FROM environment_releases WHERE environment_id = $1 ORDER BY updated_at, app",
        environment_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| ReleaseRecord {
        app: r.app,
        release: r.release,
        chart_version: r.chart_version,
        revision: r.revision as u64,
        run_id: r.run_id,
        updated_at: r.updated_at,
    })
    .collect())
}
