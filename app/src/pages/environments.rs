//! The list of environments, with status and search.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};

use crate::{
    api::environments::{list_environments, LIST_PAGE_SIZE},
    components::status::{ErrorNote, StatusBadge, When},
};

#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let page = Memo::new(move |_| {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(1)
            .max(1)
    });
    let rows = Resource::new(
        move || (q.get(), page.get()),
        |(q, page)| list_environments(q, page),
    );
    // `?q=…&page=n`, for the page links.
    let page_href = move |n: i64| {
        let q: String = q
            .get_untracked()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("?q={q}&page={n}")
    };

    view! {
        <Title text="Environments" />
        <section class="panel">
            <div class="panel-head">
                <h1>"Environments"</h1>
                <Form method="GET" action="">
                    <label for="q" class="visually-hidden">"Search environments"</label>
                    <input
                        type="search"
                        id="q"
                        name="q"
                        placeholder="Search by name or short name"
                        prop:value=move || q.get()
                    />
                    <button type="submit">"Search"</button>
                </Form>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    rows.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(rows) if rows.is_empty() => {
                                view! {
                                    <p class="empty">
                                        {if q.get().is_empty() {
                                            "No environments yet."
                                        } else {
                                            "No environment matches your search."
                                        }}
                                    </p>
                                }
                                    .into_any()
                            }
                            Ok(mut rows) => {
                                let more = rows.len() as i64 > LIST_PAGE_SIZE;
                                rows.truncate(LIST_PAGE_SIZE as usize);
                                let n = page.get();
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
                                                {rows
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
                                        {(n > 1).then(|| view! { <a href=page_href(n - 1) rel="prev">"‹ Previous"</a> })}
                                        {more.then(|| view! { <a href=page_href(n + 1) rel="next">"Next ›"</a> })}
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
