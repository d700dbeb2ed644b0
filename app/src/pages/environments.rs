//! The list of environments, with a status filter and search. In the browser it follows the
//! company-wide live stream (`/environments/all/progress`): the page shown is reloaded whenever
//! an environment changed, and when the tab is shown again after being hidden.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{environments::list_environments, paging::ListLink},
    components::status::{ErrorNote, StatusBadge, StatusFilter, When},
};

#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let status = Memo::new(move |_| query.read().get("status").unwrap_or_default());
    // The position of a previous/next link (both empty: the first page).
    let after = Memo::new(move |_| query.read().get("after").unwrap_or_default());
    let before = Memo::new(move |_| query.read().get("before").unwrap_or_default());
    let rows = Resource::new(
        move || (q.get(), status.get(), after.get(), before.get()),
        |(q, status, after, before)| list_environments(q, status, after, before),
    );
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| follow_changes(move || rows.refetch()));
    // `?q=…&status=…&after=…`, for the page links (the search and the filter are kept).
    let page_href = move |link: ListLink| {
        let (q, status) = (q.get_untracked(), status.get_untracked());
        link.href(&[("q", q.as_str()), ("status", status.as_str())])
    };

    view! {
        <Title text="Environments" />
        <section class="panel">
            <div class="panel-head">
                <h1>"Environments"</h1>
                // A plain form: a search loads the page anew (the router's `<Form>` would keep
                // the page but weighs 9 KB in the WASM every first visit loads).
                <form method="get" class="filters">
                    <StatusFilter status />
                    <label for="q" class="visually-hidden">"Search environments"</label>
                    <input
                        type="search"
                        id="q"
                        name="q"
                        placeholder="Search by name or short name"
                        prop:value=move || q.get()
                    />
                    <button type="submit">"Search"</button>
                </form>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    rows.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(list) if list.rows.is_empty() && list.previous.is_none() => {
                                view! {
                                    <p class="empty">
                                        {if q.get().is_empty() && status.get().is_empty() {
                                            "No environments yet."
                                        } else {
                                            "No environment matches your search."
                                        }}
                                    </p>
                                }
                                    .into_any()
                            }
                            Ok(list) => {
                                view! {
                                    <div class="table-wrap">
                                        <table class="list" data-testid="environments">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"Business unit"</th>
                                                    <th scope="col">"Short name"</th>
                                                    <th scope="col">"Status"</th>
                                                    <th scope="col">"Blueprint"</th>
                                                    <th scope="col">"Requested by"</th>
                                                    <th scope="col">"Last change"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .rows
                                                    .into_iter()
                                                    .map(|r| {
                                                        view! {
                                                            <tr>
                                                                <td>
                                                                    <a href=format!("/environments/{}", r.id)>{r.name}</a>
                                                                </td>
                                                                <td>
                                                                    <code>{r.slug}</code>
                                                                </td>
                                                                <td>
                                                                    <StatusBadge status=r.status />
                                                                </td>
                                                                <td>{r.blueprint.as_str()} " · " {r.size.as_str()}</td>
                                                                <td>{r.created_by}</td>
                                                                <td>
                                                                    <When stamp=r.updated_at />
                                                                </td>
                                                            </tr>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                    <nav class="pager" aria-label="Environment pages">
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

/// Calls `reload` when the company-wide stream says an environment changed (or reconnected,
/// having perhaps missed changes) and when the tab becomes visible again; all of it is undone
/// when the page goes away.
#[cfg(feature = "hydrate")]
fn follow_changes(reload: impl Fn() + Clone + 'static) {
    use std::{cell::Cell, rc::Rc};
    use wasm_bindgen::{closure::Closure, JsCast};

    let source = web_sys::EventSource::new("/environments/all/progress").ok();
    if let Some(source) = &source {
        let on_changed = Closure::<dyn FnMut()>::new(reload.clone());
        let _ =
            source.add_event_listener_with_callback("changed", on_changed.as_ref().unchecked_ref());
        on_changed.forget();
        // The first `hello` is the first connection: the page is as fresh as the stream.
        let connected_before = Rc::new(Cell::new(false));
        let on_hello = Closure::<dyn FnMut()>::new({
            let reload = reload.clone();
            move || {
                if connected_before.replace(true) {
                    reload();
                }
            }
        });
        let _ = source.add_event_listener_with_callback("hello", on_hello.as_ref().unchecked_ref());
        on_hello.forget();
    }
    let on_visible = Closure::<dyn FnMut()>::new(move || {
        if !document().hidden() {
            reload();
        }
    });
    let _ = document()
        .add_event_listener_with_callback("visibilitychange", on_visible.as_ref().unchecked_ref());
    let held = StoredValue::new_local((source, on_visible));
    on_cleanup(move || {
        held.with_value(|(source, on_visible)| {
            if let Some(source) = source {
                source.close();
            }
            let _ = document().remove_event_listener_with_callback(
                "visibilitychange",
                on_visible.as_ref().unchecked_ref(),
            );
        })
    });
}
