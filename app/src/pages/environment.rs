//! One environment: its facts, its requests and its timeline of events (pages/history.rs).

use leptos::prelude::*;
use leptos_meta::Title;

use super::{change::EnvironmentLife, history::History, id_param, provisioning::ProvisioningPanel};
use crate::{
    api::{
        environments::{get_environment, EnvironmentView},
        provisioning::Provisioning,
    },
    components::status::{ErrorNote, StatusBadge, When},
    error::AppError,
};

#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let id = id_param();
    let env = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_environment(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <Title text="Environment" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                env.get()
                    .map(|r| match r {
                        Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                        Ok(e) => view! { <EnvironmentDetail e /> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn EnvironmentDetail(e: EnvironmentView) -> impl IntoView {
    let live = RwSignal::new(None::<Provisioning>);
    let rendered_status = e.status;
    let status = move || {
        live.get()
            .and_then(|p| p.environment_status)
            .unwrap_or(rendered_status)
    };
    // Bumped whenever the stream pushes: what runs now is read again.
    let pushes = RwSignal::new(0u32);
    Effect::new(move |_| {
        live.track();
        pushes.update(|n| *n = n.wrapping_add(1));
    });
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>{e.name.clone()}</h1>
                <span data-testid="environment-status">
                    {move || view! { <StatusBadge status=status() /> }}
                </span>
            </div>
            <dl class="facts">
                <dt>"Company"</dt>
                <dd>{e.company.clone()}</dd>
                <dt>"Short name"</dt>
                <dd><code>{e.slug.clone()}</code></dd>
                <dt>"Blueprint"</dt>
                <dd>{e.blueprint.label()}</dd>
                <dt>"Size"</dt>
                <dd>{e.size.label()}</dd>
                <dt>"Owner contact"</dt>
                <dd>{e.owner_contact.clone()}</dd>
                <dt>"Description"</dt>
                <dd class="prewrap">{if e.description.is_empty() { "—".to_string() } else { e.description.clone() }}</dd>
                <dt>"Requested by"</dt>
                <dd>{e.created_by.clone()} ", " <When stamp=e.created_at.clone() /></dd>
            </dl>
        </section>
        <section class="panel" aria-labelledby="requests-title">
            <h2 id="requests-title">"Requests"</h2>
            <ul class="requests">
                {e.requests
                    .into_iter()
                    .map(|r| view! {
                        <li>
                            <a href=format!("/requests/{}", r.id)>{format!("{} request", r.kind)}</a>
                            " by " {r.requested_by} " "
                            <StatusBadge status=r.status />
                        </li>
                    })
                    .collect_view()}
            </ul>
        </section>
        <EnvironmentLife environment_id=e.id changed=pushes.into() />
        <ProvisioningPanel environment_id=e.id pushed=live />
        <History environment_id=e.id />
    }
}
