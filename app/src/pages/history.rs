//! An environment's timeline: every event, filtered by type and date, a page at a time, with
//! exports for auditors. Works without JavaScript: the filter is a GET form and the pages are
//! plain links, so every view has its own URL.

use leptos::prelude::*;
use leptos_router::{components::Form, hooks::use_query_map};
use uuid::Uuid;

use super::for_id;
use crate::{
    api::history::{history_page, EventView, HistoryQuery, PageCursor, TimelinePage},
    components::status::{ErrorNote, When},
    error::AppError,
};

/// The type filter's choices: (value, label), in option groups.
const TYPE_GROUPS: &[(&str, &[(&str, &str)])] = &[
    (
        "Groups",
        &[
            ("requests", "All request events"),
            ("runs", "All run events"),
            ("steps", "All step events"),
            ("plans", "All plan events"),
            ("errors", "Errors and retries"),
        ],
    ),
    (
        "Requests",
        &[
            ("request.submitted", "Request submitted"),
            ("request.approved", "Request approved"),
            ("request.rejected", "Request rejected"),
            ("request.withdrawn", "Request withdrawn"),
            ("request.provisioning", "Provisioning started"),
            ("request.ready", "Environment ready"),
            ("request.failed", "Provisioning failed"),
        ],
    ),
    (
        "Plans",
        &[
            ("plan.requested", "Plan requested"),
            ("plan.ready", "Plan ready"),
            ("plan.failed", "Plan failed"),
            ("run.needs_reapproval", "Run stopped: needs re-approval"),
        ],
    ),
    (
        "Runs",
        &[
            ("run.enqueued", "Run enqueued"),
            ("run.started", "Run started"),
            ("run.succeeded", "Run succeeded"),
            ("run.failed", "Run failed"),
            ("run.cancelled", "Run cancelled"),
            ("run.retried", "Run retried"),
            ("run.rolling_back", "Change failed: rolling back"),
            ("run.rolled_back", "Change rolled back"),
            ("decommissioned", "Decommissioned (proven)"),
        ],
    ),
    (
        "Steps",
        &[
            ("step.started", "Step started"),
            ("step.succeeded", "Step succeeded"),
            ("step.retrying", "Step retrying"),
            ("step.failed", "Step failed"),
            ("step.lease_expired", "Step taken over (lease expired)"),
        ],
    ),
];

/// A person's name for an event kind (the kind itself when it is new to this list).
pub fn event_label(kind: &str) -> &str {
    TYPE_GROUPS
        .iter()
        .skip(1)
        .flat_map(|(_, kinds)| kinds.iter())
        .find(|(k, _)| *k == kind)
        .map(|(_, label)| *label)
        .unwrap_or(kind)
}

/// The timeline section of an environment page.
/// The timeline's filter (from the address) and the page of events it selects, made by the
/// environment page itself (see `environment.rs` for why).
#[derive(Clone, Copy)]
pub struct TimelineData {
    query: Memo<HistoryQuery>,
    page: Resource<Result<TimelinePage, AppError>>,
}

impl TimelineData {
    pub fn load(id: Memo<Option<Uuid>>) -> Self {
        let params = use_query_map();
        let query = Memo::new(move |_| {
            let p = params.read();
            let get = |k: &str| p.get(k).unwrap_or_default();
            HistoryQuery {
                kind: get("kind"),
                from: get("from"),
                to: get("to"),
                after: get("after"),
                before: get("before"),
                page: get("page"),
            }
        });
        let page = Resource::new(
            move || (id.get(), query.get()),
            |(id, q)| for_id(id, |id| history_page(id, q)),
        );
        Self { query, page }
    }
}

#[component]
pub fn History(environment_id: Uuid, data: TimelineData) -> impl IntoView {
    let TimelineData { query, page } = data;
    let base = format!("/environments/{environment_id}");

    view! {
        <section class="panel" aria-labelledby="timeline-title">
            <div class="panel-head">
                <h2 id="timeline-title">"Timeline"</h2>
            </div>
            <Form method="GET" action="" attr:class="filters" attr:data-testid="timeline-filters">
                <label>
                    "Type "
                    <select name="kind">
                        <option value="" selected=move || query.get().kind.is_empty()>
                            "All events"
                        </option>
                        {TYPE_GROUPS
                            .iter()
                            .map(|(group, kinds)| {
                                view! {
                                    <optgroup label=*group>
                                        {kinds
                                            .iter()
                                            .map(|(value, label)| {
                                                let value = *value;
                                                view! {
                                                    <option
                                                        value=value
                                                        selected=move || query.get().kind == value
                                                    >
                                                        {*label}
                                                    </option>
                                                }
                                            })
                                            .collect_view()}
                                    </optgroup>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "From " <input type="date" name="from" prop:value=move || query.get().from />
                </label>
                <label>
                    "To " <input type="date" name="to" prop:value=move || query.get().to />
                </label>
                <button type="submit">"Filter"</button>
                <a href=base>"Clear"</a>
            </Form>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    page.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(p) => {
                                let q = query.get();
                                let link = move |c: PageCursor| q.with_cursor(c);
                                let export = |ext: &str| {
                                    let filter = query.get_untracked().filter_query();
                                    let sep = if filter.is_empty() { "" } else { "?" };
                                    format!("/environments/{environment_id}/history.{ext}{sep}{filter}")
                                };
                                view! {
                                    {p.events.is_empty().then(|| view! {
                                        <p class="empty">"No events match these filters."</p>
                                    })}
                                    <ol class="timeline" data-testid="timeline">
                                        {p.events
                                            .into_iter()
                                            .map(|ev| view! { <TimelineItem ev /> })
                                            .collect_view()}
                                    </ol>
                                    <nav class="pager" aria-label="Timeline pages">
                                        {p.previous.map(|_| view! {
                                            <a href=link(PageCursor::First)>"« Oldest"</a>
                                        })}
                                        {p.previous.map(|c| view! {
                                            <a href=link(c) rel="prev">"‹ Earlier"</a>
                                        })}
                                        {p.next.map(|c| view! {
                                            <a href=link(c) rel="next">"Later ›"</a>
                                        })}
                                        {p.next.map(|_| view! {
                                            <a href=link(PageCursor::Latest)>"Newest »"</a>
                                        })}
                                    </nav>
                                    {p.can_export.then(|| view! {
                                        <p class="exports">
                                            "Export these events: "
                                            <a href=export("csv") rel="external" download>"Export CSV"</a>
                                            " · "
                                            <a href=export("json") rel="external" download>"Export JSON"</a>
                                        </p>
                                    })}
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn TimelineItem(ev: EventView) -> impl IntoView {
    view! {
        <li class=format!("event event-{}", ev.kind.replace('.', "-")) data-kind=ev.kind.clone()>
            <div class="event-head">
                <strong>{event_label(&ev.kind).to_string()}</strong>
                " by "
                <span class="actor">{ev.actor.unwrap_or_else(|| "Berth".into())}</span>
                " · "
                <When stamp=ev.at />
                {ev.request_id.map(|r| view! {
                    " · " <a href=format!("/requests/{r}")>"request"</a>
                })}
                {ev.plan_id.map(|p| view! {
                    " · " <a href=format!("/plans/{p}")>"plan"</a>
                })}
            </div>
            {ev.summary.map(|s| view! { <p class="event-summary prewrap">{s}</p> })}
            <details class="event-details">
                <summary>{format!("Details (event {})", ev.id)}</summary>
                <pre>{ev.details}</pre>
            </details>
        </li>
    }
}
