//! The page frame: header with navigation and the signed-in person, then the page.

use berth_domain::Role;
use leptos::prelude::*;

use crate::api::session::{whoami, Me};

/// The signed-in person, loaded once per page load and shared with every page.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Option<Me>>);

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let me = Resource::new(|| (), |_| async { whoami().await.ok().flatten() });
    provide_context(CurrentUser(me));

    view! {
        <header class="topbar">
            <a class="brand" href="/">"Berth"</a>
            <nav aria-label="Main">
                <a href="/">"Environments"</a>
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .flatten()
                            .filter(|m| m.roles.contains(&Role::Manager))
                            .map(|_| view! { <a href="/requests/new">"Request a unit"</a> })
                    }}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .flatten()
                            .filter(|m| m.roles.iter().any(|r| matches!(r, Role::Auditor | Role::Admin)))
                            .map(|_| view! { <a href="/audit">"Audit"</a> })
                    }}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .flatten()
                            .filter(|m| !m.roles.is_empty())
                            .map(|_| view! { <a href="/tokens">"API tokens"</a> })
                    }}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .flatten()
                            .filter(|m| m.roles.contains(&Role::Admin))
                            .map(|_| view! { <a href="/admin/service-accounts">"Service accounts"</a> })
                    }}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .flatten()
                            .filter(|m| m.roles.contains(&Role::Admin))
                            .map(|_| view! { <a href="/admin/webhooks">"Webhooks"</a> })
                    }}
                </Suspense>
            </nav>
            <div class="who">
                <Suspense fallback=|| ()>
                    {move || {
                        me.get()
                            .map(|m| match m {
                                Some(m) => {
                                    let roles = m
                                        .roles
                                        .iter()
                                        .map(|r| r.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ");
                                    view! {
                                        <span class="who-name" data-testid="who">
                                            {m.name}
                                        </span>
                                        <span class="who-roles">
                                            {if roles.is_empty() { "no role".to_string() } else { roles }}
                                        </span>
                                        <form method="post" action="/auth/logout" class="inline">
                                            <button type="submit" class="link">
                                                "Sign out"
                                            </button>
                                        </form>
                                    }
                                        .into_any()
                                }
                                None => view! { <a href="/login">"Sign in"</a> }.into_any(),
                            })
                    }}
                </Suspense>
            </div>
        </header>
        <main id="main">{children()}</main>
        <footer class="footer">"Berth — environments for every business unit"</footer>
    }
}
