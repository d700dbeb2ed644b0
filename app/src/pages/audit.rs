//! The auditors' view: every environment, rejected and withdrawn ones included, with its latest
//! request, run and event. Auditors and admins only (checked on the server).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};

use crate::{
    api::{
        history::{audit_environments, AuditRow},
        paging::ListLink,
    },
    components::status::{ErrorNote, StatusBadge, StatusFilter, When},
    pages::history::event_label,
};

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_query_map();
    let status = Memo::new(move |_| params.read().get("status").unwrap_or_default());
    let q = Memo::new(move |_| params.read().get("q").unwrap_or_default());
    // The position of a previous/next link (both empty: the first page).
    let after = Memo::new(move |_| params.read().get("after").unwrap_or_default());
    let before = Memo::new(move |_| params.read().get("before").unwrap_or_default());
    let list = Resource::new(
        move || (status.get(), q.get(), after.get(), before.get()),
        |(status, q, after, before)| audit_environments(status, q, after, before),
    );
    // `?status=…&q=…&after=…`, leaving out what is empty.
    let page_href = move |link: ListLink| {
        let (status, q) = (status.get_untracked(), q.get_untracked());
        link.href(&[("status", status.as_str()), ("q", q.as_str())])
    };

    view! {
        <Title text="Audit" />
        <section class="panel">
            <div class="panel-head">
                <h1>"Audit: every environment"</h1>
                <Form method="GET" action="" attr:class="filters">
                    <StatusFilter status />
                    <label for="audit-q" class="visually-hidden">"Search environments"</label>
                    <input
                        type="search"
                        id="audit-q"
                        name="q"
                        placeholder="Name or short name"
                        prop:value=move || q.get()
                    />
                    <button type="submit">"Filter"</button>
                </Form>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    list.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(list) => {
                                view! {
                                    <p class="muted" data-testid="audit-total">
                                        {format!(
                                            "{} environment{}",
                                            list.total,
                                            if list.total == 1 { "" } else { "s" },
                                        )}
                                    </p>
                                    <div class="table-wrap">
                                        // Fixed column widths (style/main.css): long names
                                        // wrap inside their cells, and the table never grows
                                        // wider than the page.
                                        <table class="list audit" data-testid="audit-environments">
                                            <thead>
                                                <tr>
                                                    <th scope="col" class="col-unit">"Business unit"</th>
                                                    <th scope="col" class="col-status">"Status"</th>
                                                    <th scope="col" class="col-blueprint">"Blueprint"</th>
                                                    <th scope="col" class="col-request">"Latest request"</th>
                                                    <th scope="col" class="col-run">"Latest run"</th>
                                                    <th scope="col" class="col-event">"Last event"</th>
                                                    <th scope="col" class="col-events num">"Events"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .rows
                                                    .into_iter()
                                                    .map(|r| view! { <AuditLine r /> })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                    <nav class="pager" aria-label="Audit pages">
                                        {list.previous.map(|l| view! { <a href=page_href(l) rel="prev">"‹ Previous"</a> })}
                                        {list.next.map(|l| view! { <a href=page_href(l) rel="next">"Next ›"</a> })}
                                    </nav>
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
fn AuditLine(r: AuditRow) -> impl IntoView {
    let dash = || "—".to_string();
    view! {
        <tr data-status=r.status.as_str()>
            <td>
                <a href=format!("/environments/{}", r.id)>{r.name}</a>
                " "
                <code>{r.slug}</code>
            </td>
            <td>
                <StatusBadge status=r.status />
            </td>
            <td>
                {r.blueprint} " · " {r.size}
                {r.blueprint_version.map(|v| format!(" · v{v}"))}
            </td>
            <td>
                {match (r.request_kind, r.request_status) {
                    (Some(kind), Some(status)) => {
                        view! {
                            {kind} " " <StatusBadge status /> <br />
                            <span class="muted">
                                "by " {r.requested_by.unwrap_or_else(dash)}
                                {r.decided_by.map(|d| format!(", decided by {d}"))}
                            </span>
                        }
                            .into_any()
                    }
                    _ => dash().into_any(),
                }}
            </td>
            <td>{r.run_status.map(|s| s.to_string()).unwrap_or_else(dash)}</td>
            <td>
                {match (r.last_event_kind, r.last_event_at) {
                    (Some(kind), Some(at)) => {
                        view! { {event_label(&kind).to_string()} <br /> <When stamp=at /> }
                            .into_any()
                    }
                    _ => dash().into_any(),
                }}
            </td>
            <td class="num">{r.event_count}</td>
        </tr>
    }
}
