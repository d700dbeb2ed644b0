//! The page frame: header with navigation and the signed-in person, then the page.

use berth_domain::Role;
use leptos::prelude::*;

use crate::api::session::{whoami, Me};

/// The signed-in person, loaded once per page load and shared with every page.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Option<Me>>);

/// The navigation links a person's roles open, in the order the bar shows them.
fn role_links(roles: &[Role]) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    const LINKS: [(&str, &str, &[Role]); 6] = [
        ("/requests/new", "Request a unit", &[Role::Manager]),
        ("/audit", "Audit", &[Role::Auditor, Role::Admin]),
        // Every role may hold a token (scoped to its roles).
        ("/tokens", "API tokens", &Role::ALL),
        (
            "/admin/service-accounts",
            "Service accounts",
            &[Role::Admin],
        ),
        ("/admin/webhooks", "Webhooks", &[Role::Admin]),
        ("/admin/people", "People", &[Role::Admin]),
    ];
    LINKS
        .into_iter()
        .filter(|(_, _, open_to)| open_to.iter().any(|r| roles.contains(r)))
        .map(|(href, label, _)| (href, label))
}

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
                        me.get().flatten().map(|m| {
                            role_links(&m.roles)
                                .map(|(href, label)| view! { <a href=href>{label}</a> })
                                .collect_view()
                        })
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
