//! Signing in: single sign-on through the company's identity provider and, on a local
//! development server only, a development sign-in that picks a demo account. Both come back to
//! `?return_to=` (the page a visitor asked for before being sent here), which the server checks.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::session::{sign_in_options, DemoUser},
    components::status::sign_in_href,
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let options = Resource::new(|| (), |_| sign_in_options());
    let query = use_query_map();
    let failed = move || query.read().get("error");
    let return_to = move || query.read().get("return_to").unwrap_or_default();
    view! {
        <Title text="Sign in" />
        <section class="panel narrow">
            <h1>"Sign in"</h1>
            {move || failed().map(|e| view! { <p class="alert alert-error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    options
                        .get()
                        .map(|r| match r {
                            Ok(o) => {
                                let nothing = !o.sso && o.demo_users.is_empty();
                                let back = return_to();
                                let sso_href = if back.is_empty() {
                                    "/auth/login".to_string()
                                } else {
                                    sign_in_href(&back)
                                };
                                view! {
                                    {o.ended.map(|why| view! {
                                        <p class="notice" role="status" data-testid="sign-in-ended">{why}</p>
                                    })}
                                    {o.sso.then(|| view! {
                                        <p>"Sign in with your company account."</p>
                                        <p>
                                            <a class="button" href=sso_href rel="external">"Sign in with single sign-on"</a>
                                        </p>
                                    })}
                                    {(!o.demo_users.is_empty()).then(|| view! { <DemoUsers users=o.demo_users return_to=back /> })}
                                    {nothing.then(|| view! {
                                        <p class="notice">"Sign-in is not configured on this server."</p>
                                    })}
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <p class="alert alert-error">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

#[component]
fn DemoUsers(users: Vec<DemoUser>, return_to: String) -> impl IntoView {
    view! {
        <h2>"Development sign-in"</h2>
        <p class="notice">
            "Pick a demo account. This only exists on a local development server."
        </p>
        <ul class="demo-users">
            {users
                .into_iter()
                .map(|u| {
                    let roles = u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
                    view! {
                        <li>
                            <form method="post" action="/auth/dev-login">
                                <input type="hidden" name="user_id" value=u.id.to_string() />
                                <input type="hidden" name="return_to" value=return_to.clone() />
                                <button type="submit" class="demo-user">
                                    <strong>{u.name.clone()}</strong>
                                    <span class="muted">
                                        {if roles.is_empty() { "no role".to_string() } else { roles }}
                                    </span>
                                </button>
                            </form>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
