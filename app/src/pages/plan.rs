//! A plan as people read it: the change set, the namespace and quota, the charts with their
//! values (secrets redacted), and the cluster's capacity; for a change, first what differs from
//! what runs now; for a decommission, what goes and what stays. Shown on the request page for the
//! decision, and on its own page (`/plans/:id`) for auditors following a run back to the plan it
//! executed.

use berth_domain::plan::{
    CapacityFigures, ChangeDiff, ChartPlan, KubernetesPlan, LimitRange, RemovalPlan,
};
use berth_domain::{PlanDocument, PlanStatus};
use leptos::prelude::*;
use leptos_meta::Title;

use super::id_param;
use crate::{
    api::plans::{get_plan, PlanView, RefreshPlan},
    components::status::{ErrorNote, When},
    error::AppError,
};

/// `/plans/:id`.
#[component]
pub fn PlanPage() -> impl IntoView {
    let id = id_param();
    let plan = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_plan(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <Title text="Plan" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || plan.get().map(|p| match p {
                Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                Ok(p) => {
                    let request = format!("/requests/{}", p.request_id);
                    view! {
                        <p><a href=request>"← The request"</a></p>
                        <PlanPanel plan=p refresh=None heading_level=1 />
                    }.into_any()
                }
            })}
        </Transition>
    }
}

/// The plan panel; `refresh` is the request page's refresh action (absent elsewhere).
#[component]
pub fn PlanPanel(
    plan: PlanView,
    refresh: Option<ServerAction<RefreshPlan>>,
    #[prop(default = 2)] heading_level: u8,
) -> impl IntoView {
    let title = match plan.short_hash() {
        Some(h) => format!("Plan {h}"),
        None => "Plan".to_owned(),
    };
    let heading = if heading_level == 1 {
        view! { <h1 id="plan-title">{title}</h1> }.into_any()
    } else {
        view! { <h2 id="plan-title">{title}</h2> }.into_any()
    };
    let refresh_form = match refresh {
        Some(action) if plan.can_refresh => {
            let request_id = plan.request_id.to_string();
            Some(view! {
                <ActionForm action attr:class="inline">
                    <input type="hidden" name="request_id" value=request_id />
                    <button type="submit" class="secondary" disabled=move || action.pending().get()>
                        "Refresh the plan"
                    </button>
                </ActionForm>
            })
        }
        _ => None,
    };
    let refresh_error = move || refresh.and_then(|a| a.value().get()).and_then(Result::err);
    let body = match plan.status {
        PlanStatus::Computing => view! {
            <p class="notice" data-testid="plan-computing" role="status">
                "Computing the plan… it appears here when ready."
            </p>
        }
        .into_any(),
        PlanStatus::Failed => view! {
            <div class="alert alert-error" role="alert" data-testid="plan-error">
                <p><strong>"The plan failed: "</strong>{plan.error.clone().unwrap_or_default()}</p>
                <p>"This request cannot be approved until it plans cleanly."</p>
            </div>
        }
        .into_any(),
        PlanStatus::Ready => match (plan.document.clone(), plan.capacity) {
            (Some(doc), Some(capacity)) => view! { <PlanBody doc capacity /> }.into_any(),
            _ => view! { <p class="muted">"The plan has no content."</p> }.into_any(),
        },
    };
    view! {
        <section class="panel" aria-labelledby="plan-title" data-testid="plan"
            data-plan-status=plan.status.to_string() data-plan-hash=plan.hash.clone().unwrap_or_default()>
            <div class="panel-head">
                {heading}
                {refresh_form}
            </div>
            {move || refresh_error().map(|e| view! { <ErrorNote error=e /> })}
            <p class="muted">
                {plan.reason.clone()} ", requested " <When stamp=plan.created_at.clone() />
                {plan.finished_at.clone().map(|s| view! { "; computed " <When stamp=s /> })}
                {plan.hash.clone().map(|h| view! { "; hash " <code class="hash" title="SHA-256 of the plan">{h}</code> })}
            </p>
            {body}
        </section>
    }
}

#[component]
fn PlanBody(doc: PlanDocument, capacity: CapacityFigures) -> impl IntoView {
    if let Some(removal) = doc.removal.clone() {
        return view! { <RemovalBody removal /> }.into_any();
    }
    let change = doc.change.clone();
    let aws = doc.aws.clone();
    let kind = match aws.kind.as_str() {
        "create" => "a new stack".to_owned(),
        "update" => "an update of the live stack".to_owned(),
        _ => "no change: the live stack already matches".to_owned(),
    };
    view! {
        <CapacityLine capacity />
        {change.map(|change| view! { <ChangeBody change /> })}
        <h3>"AWS: CloudFormation stack " <code>{aws.stack_name.clone()}</code></h3>
        <p>"Change set: " {kind} ", " {aws.changes.len()} " resource changes (deleted after it was read; nothing runs before approval)."</p>
        <div class="table-wrap">
            <table data-testid="plan-changes">
                <thead><tr><th scope="col">"Action"</th><th scope="col">"Logical id"</th><th scope="col">"Type"</th></tr></thead>
                <tbody>
                    {aws.changes.iter().map(|c| view! {
                        <tr>
                            <td>{c.action.replace('_', " ")}</td>
                            <td><code>{c.logical_id.clone()}</code></td>
                            <td>{c.resource_type.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <details>
            <summary>"Stack parameters"</summary>
            <dl class="facts" data-testid="plan-parameters">
                {aws.parameters.iter().map(|(k, v)| view! { <dt>{k.clone()}</dt><dd><code>{v.clone()}</code></dd> }).collect_view()}
            </dl>
        </details>
        <KubernetesSection k=doc.kubernetes.clone() />
        <details open=doc.change.is_none()>
            <summary><h3 class="inline">"Charts, in install order"</h3></summary>
            <ol class="charts" data-testid="plan-charts">
                {doc.charts.iter().cloned().map(|c| view! { <ChartItem c /> }).collect_view()}
            </ol>
        </details>
        <p class="muted">
            "Blueprint " {doc.inputs.blueprint.clone()} " " {doc.inputs.blueprint_version.clone()}
            "; registry " {doc.inputs.registry_server.clone()} "; domain " {doc.inputs.domain.clone()}
            "; cluster " {doc.inputs.cluster.clone()} "."
        </p>
    }
    .into_any()
}

/// What a change differs in, and only that: the fields, the quota, each app's chart version and
/// the diff of its rendered values.
#[component]
fn ChangeBody(change: ChangeDiff) -> impl IntoView {
    let quota = (change.quota_before != change.quota_after)
        .then(|| format!("{} → {}", change.quota_before, change.quota_after));
    view! {
        <h3>"What this change changes"</h3>
        <div class="table-wrap">
            <table data-testid="plan-fields">
                <thead><tr><th scope="col">"Field"</th><th scope="col">"Now"</th><th scope="col">"After"</th></tr></thead>
                <tbody>
                    {change.fields.iter().map(|f| view! {
                        <tr><td>{f.field.clone()}</td><td>{f.before.clone()}</td><td>{f.after.clone()}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {quota.map(|q| view! { <p data-testid="plan-quota">"ResourceQuota: " {q}</p> })}
        <ul class="app-changes" data-testid="plan-apps">
            {change.apps.iter().map(|a| {
                let action = a.action.to_string();
                let action_attr = action.clone();
                let versions = match (&a.chart_before, &a.chart_after) {
                    (Some(b), Some(after)) if b != after => format!("chart {b} → {after}"),
                    (_, Some(after)) => format!("chart {after}"),
                    _ => String::new(),
                };
                let revision = a.revision_before.map(|r| format!(", now at revision {r}")).unwrap_or_default();
                let diff = (!a.values_diff.is_empty()).then(|| a.values_diff.join("\n"));
                view! {
                    <li data-testid="plan-app" data-app=a.app.clone() data-action=action_attr>
                        <strong>{a.app.clone()}</strong> ": " {action} " (" {versions} {revision} ")"
                        {diff.map(|d| view! {
                            <details open>
                                <summary>"Values diff (secrets redacted)"</summary>
                                <pre class="values diff">{d}</pre>
                            </details>
                        })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// What a decommission removes, in order, and what it keeps.
#[component]
fn RemovalBody(removal: RemovalPlan) -> impl IntoView {
    view! {
        <h3>"What this decommission removes, in order"</h3>
        <ol data-testid="plan-removal">
            {removal.apps.iter().map(|a| view! { <li>"Uninstall " <strong>{a.clone()}</strong></li> }).collect_view()}
            <li>"Delete namespace " <code>{removal.namespace.clone()}</code> " and Rancher project " <code>{removal.project.clone()}</code></li>
            <li>"Delete stack " <code>{removal.stack_name.clone()}</code> ": "
                {removal.resources.iter().map(|r| r.logical_id.clone()).collect::<Vec<_>>().join(", ")}
            </li>
            <li>"Schedule the unit's secrets for deletion (recoverable for " {removal.secret_recovery_days} " days)"</li>
            <li>"Prove it: no stack by tag, no app, namespace or project in Rancher, secrets only as scheduled for deletion"</li>
        </ol>
        <h3>"What is kept"</h3>
        <ul data-testid="plan-retained">
            {removal.retained.iter().map(|r| view! {
                <li><code>{r.name.clone()}</code> " (" {r.resource_type.clone()} "): " {r.why.clone()}</li>
            }).collect_view()}
        </ul>
    }
}

#[component]
fn CapacityLine(capacity: CapacityFigures) -> impl IntoView {
    let fits = capacity.fits();
    let class = if fits { "notice" } else { "alert alert-error" };
    view! {
        <p class=class data-testid="capacity" data-over=(!fits).to_string()>
            <strong>{if fits { "Capacity: fits. " } else { "Capacity: over the cluster's allocatable resources. " }}</strong>
            {capacity.summary()} " (this request: " {capacity.requested.to_string()}
            "; other live environments: " {capacity.committed.to_string()} ")."
        </p>
    }
}

fn limits(lr: &LimitRange) -> String {
    format!(
        "containers default to requests {} CPU / {} and limits {} CPU / {}",
        lr.default_request.cpu_quantity(),
        lr.default_request.memory_quantity(),
        lr.default_limit.cpu_quantity(),
        lr.default_limit.memory_quantity()
    )
}

#[component]
fn KubernetesSection(k: KubernetesPlan) -> impl IntoView {
    let project = match &k.existing_project {
        Some(id) => format!("{} (exists: {id})", k.project),
        None => format!("{} (new)", k.project),
    };
    let namespace = if k.namespace_exists {
        format!("{} (exists)", k.namespace)
    } else {
        format!("{} (new)", k.namespace)
    };
    view! {
        <h3>"Kubernetes through Rancher"</h3>
        <dl class="facts" data-testid="plan-kubernetes">
            <dt>"Cluster"</dt><dd>{k.cluster.clone()} " (" <code>{k.cluster_id.clone()}</code> ")"</dd>
            <dt>"Project"</dt><dd>{project}</dd>
            <dt>"Namespace"</dt><dd>{namespace}</dd>
            <dt>"ResourceQuota"</dt><dd>{k.quota.to_string()}</dd>
            <dt>"LimitRange"</dt><dd>{limits(&k.limit_range)}</dd>
        </dl>
    }
}

#[component]
fn ChartItem(c: ChartPlan) -> impl IntoView {
    let after = if c.depends_on.is_empty() {
        String::new()
    } else {
        format!(", after {}", c.depends_on.join(", "))
    };
    view! {
        <li data-testid="plan-chart">
            <strong>{c.app.clone()}</strong> ": " {c.repo.clone()} "/" {c.chart.clone()} " "
            <span class="version">{c.version.clone()}</span> {after}
            <details>
                <summary>"Values (secrets redacted)"</summary>
                <pre class="values">{c.values.clone()}</pre>
            </details>
        </li>
    }
}
