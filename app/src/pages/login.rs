//! Signing in. Until single sign-on lands, a development sign-in lets you pick a demo user;
//! it only exists when the server was started with it enabled on a loopback address.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{api::session::demo_users, error::AppError};

#[component]
pub fn LoginPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| demo_users());
    view! {
        <Title text="Sign in" />
        <section class="panel narrow">
            <h1>"Sign in"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    users
                        .get()
                        .map(|r| match r {
                            Ok(users) => {
                                view! {
                                    <p class="notice">
                                        "Development sign-in: pick a demo account. This page only exists on a local development server."
                                    </p>
                                    <ul class="demo-users">
                                        {users
                                            .into_iter()
                                            .map(|u| {
                                                let roles = u
                                                    .roles
                                                    .iter()
                                                    .map(|r| r.as_str())
                                                    .collect::<Vec<_>>()
                                                    .join(", ");
                                                view! {
                                                    <li>
                                                        <form method="post" action="/auth/dev-login">
                                                            <input type="hidden" name="user_id" value=u.id.to_string() />
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
                                    .into_any()
                            }
                            Err(AppError::NotFound) => {
                                view! {
                                    <p>"Sign in with your company account."</p>
                                    <p>
                                        <a class="button" href="/auth/login">"Continue to single sign-on"</a>
                                    </p>
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
