//! Reading environments and their timelines.

use berth_domain::{BlueprintName, EnvironmentStatus, Size};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{paging::ListLink, requests::RequestView, Stamp};
use crate::error::AppError;

/// A row of the environment list, the page people land on: the id is text (only ever linked),
/// so the WASM loaded first carries no UUID parser (docs/benchmarks.md, 2026-12-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub status: EnvironmentStatus,
    pub blueprint: BlueprintName,
    pub size: Size,
    pub created_by: String,
    pub updated_at: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentView {
    pub id: Uuid,
    pub company: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub owner_contact: String,
    pub status: EnvironmentStatus,
    pub blueprint: BlueprintName,
    pub size: Size,
    pub created_by: String,
    pub created_at: Stamp,
    pub requests: Vec<RequestView>,
}

/// Environments on one page of the list.
pub const LIST_PAGE_SIZE: i64 = 50;

/// A page of the environment list with its neighbours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentList {
    pub rows: Vec<EnvironmentRow>,
    pub next: Option<ListLink>,
    pub previous: Option<ListLink>,
}

/// The company's environments, newest change first; `query` searches names and slugs, `status`
/// (empty: any) keeps one status. [`LIST_PAGE_SIZE`] rows after (or before) the cursor of a
/// previous/next link; both empty: the first page.
#[server(endpoint = "list_environments", output = super::codec::JsonOut)]
pub async fn list_environments(
    query: String,
    #[server(default)] status: String,
    #[server(default)] after: String,
    #[server(default)] before: String,
) -> Result<EnvironmentList, AppError> {
    use super::{guard, history::list_filter, paging};
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::ReadEnvironments).await?;
        let filter = list_filter(&status, &query)?;
        let cursor = paging::list_cursor(&after, &before)?;
        let page =
            berth_db::lists::environments(&s.pool, s.company.id, &filter, cursor, LIST_PAGE_SIZE)
                .await?;
        Ok(EnvironmentList {
            rows: page
                .rows
                .into_iter()
                .map(|r| EnvironmentRow {
                    id: r.id.to_string(),
                    name: r.name,
                    slug: r.slug,
                    status: r.status,
                    blueprint: r.blueprint,
                    size: r.size,
                    created_by: r.created_by_name,
                    updated_at: r.updated_at.into(),
                })
                .collect(),
            next: page.next.map(paging::list_link),
            previous: page.previous.map(paging::list_link),
        })
    })
    .await
}

/// One environment with its requests (its timeline is read a page at a time, see
/// [`super::history::history_page`]).
#[server(endpoint = "get_environment", output = super::codec::JsonOut)]
pub async fn get_environment(id: Uuid) -> Result<EnvironmentView, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        let env = berth_db::requests::get_environment(&s.pool, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let requests = berth_db::requests::requests_for_environment(&s.pool, id).await?;
        Ok(EnvironmentView {
            id: env.id,
            company: env.company_name,
            name: env.name,
            slug: env.slug,
            description: env.description,
            owner_contact: env.owner_contact,
            status: env.status,
            blueprint: env.blueprint,
            size: env.size,
            created_by: env.created_by_name,
            created_at: env.created_at.into(),
            requests: requests
                .into_iter()
                .map(|r| RequestView::new(r, &actor))
                .collect(),
        })
    })
    .await
}

/// A one-line human summary of a request event's details (the timeline shows it).
#[cfg(feature = "ssr")]
pub(crate) fn summarize(kind: &str, details: &serde_json::Value) -> Option<String> {
    let text = |k: &str| details.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match kind {
        "request.submitted" => details.get("spec").map(|spec| {
            let field = |k: &str| spec.get(k).and_then(|v| v.as_str()).unwrap_or("?");
            format!(
                "{} ({}), blueprint {}, size {}",
                field("name"),
                field("slug"),
                field("blueprint"),
                field("size")
            )
        }),
        "request.approved" => {
            let plan = text("plan_hash").map(|h| format!("plan {}", &h[..12.min(h.len())]));
            let capacity =
                text("capacity_override").map(|r| format!("over capacity, overridden: {r}"));
            let parts: Vec<String> = [plan, capacity, text("note")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        "request.rejected" => text("note"),
        "plan.ready" => text("hash").map(|h| {
            let over = details.get("over_capacity").and_then(|v| v.as_bool()) == Some(true);
            format!(
                "plan {}{}",
                &h[..12.min(h.len())],
                if over {
                    ", over the cluster's capacity"
                } else {
                    ""
                }
            )
        }),
        "plan.failed" => text("error"),
        "plan.requested" => text("reason").map(|r| format!("reason: {r}")),
        "run.needs_reapproval" => text("changed"),
        "run.rolling_back" => text("failed").map(|f| format!("change failed at {f}")),
        "run.rolled_back" => {
            let apps: Vec<String> = details
                .get("rolled_back")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    Some(format!(
                        "{} to revision {}",
                        a.get("app")?.as_str()?,
                        a.get("rolled_back_to")?.as_u64()?
                    ))
                })
                .collect();
            text("failed").map(|f| {
                if apps.is_empty() {
                    format!("change failed at {f}; nothing needed rolling back")
                } else {
                    format!("change failed at {f}; rolled back {}", apps.join(", "))
                }
            })
        }
        "decommissioned" => details
            .get("checks")
            .and_then(|c| c.as_array())
            .map(|checks| {
                let passed = checks
                    .iter()
                    .filter(|c| c.get("passed").and_then(|p| p.as_bool()) == Some(true))
                    .count();
                format!(
                    "{passed} of {} checks passed: nothing of the unit remains",
                    checks.len()
                )
            }),
        _ => None,
    }
}
