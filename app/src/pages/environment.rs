//! One environment: its facts, its requests and its timeline of events (pages/history.rs).
//! Every status on it follows the live progress stream: the header's from each snapshot, the
//! request list reloaded whenever a snapshot says the environment or its run moved on.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{
    change::{EnvironmentLife, LifeData},
    for_id,
    history::{History, TimelineData},
    id_param,
    provisioning::{ProvisioningData, ProvisioningPanel},
};
use crate::{
    api::{
        environments::{get_environment, EnvironmentView},
        provisioning::Provisioning,
    },
    components::status::{ErrorNote, StatusBadge, When},
};

#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let id = id_param();
    let env = Resource::new(move || id.get(), |id| for_id(id, get_environment));
    // Every resource of the page is made here, once, outside the Transition. The server calls
    // a Transition's children more than once (to find what they read, then to await it), and a
    // resource made inside them was fetched again each time: the HTML showed the last fetch
    // while the browser hydrated from the first, and while a run moved on in between the two
    // differed and hydration failed.
    let live = RwSignal::new(None::<Provisioning>);
    // Bumped whenever the stream pushes: what runs now is read again. Not on the effect's first
    // run, which only subscribes: the server-rendered data is current.
    let pushes = RwSignal::new(0u32);
    Effect::new(move |first: Option<()>| {
        live.track();
        if first.is_some() {
            pushes.update(|n| *n = n.wrapping_add(1));
        }
    });
    let data = PageData {
        live,
        life: LifeData::load(id, pushes.into()),
        provisioning: ProvisioningData::load(id),
        timeline: TimelineData::load(id),
    };
    view! {
        <Title text="Environment" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                env.get()
                    .map(|r| match r {
                        Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                        Ok(e) => view! { <EnvironmentDetail e data /> }.into_any(),
                    })
            }}
        </Transition>
    }
}

/// What the page's sections show besides the environment itself.
#[derive(Clone, Copy)]
struct PageData {
    /// Every snapshot of the live progress stream.
    live: RwSignal<Option<Provisioning>>,
    life: LifeData,
    provisioning: ProvisioningData,
    timeline: TimelineData,
}

#[component]
fn EnvironmentDetail(e: EnvironmentView, data: PageData) -> impl IntoView {
    let live = data.live;
    let rendered_status = e.status;
    let status = move || {
        live.get()
            .and_then(|p| p.environment_status)
            .unwrap_or(rendered_status)
    };
    let requests = RwSignal::new(e.requests);
    #[cfg(feature = "hydrate")]
    reload_requests_on_change(e.id, rendered_status, live, requests);
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
            <ul class="requests" data-testid="requests">
                {move || {
                    requests
                        .get()
                        .into_iter()
                        .map(|r| view! {
                            <li data-status=r.status.as_str()>
                                <a href=format!("/requests/{}", r.id)>{format!("{} request", r.kind)}</a>
                                " by " {r.requested_by} " "
                                <StatusBadge status=r.status />
                            </li>
                        })
                        .collect_view()
                }}
            </ul>
        </section>
        <EnvironmentLife environment_id=e.id data=data.life />
        <ProvisioningPanel environment_id=e.id pushed=live data=data.provisioning />
        <History environment_id=e.id data=data.timeline />
    }
}

/// Reloads `requests` whenever a live snapshot shows the environment's status, or its latest
/// run's, changed since the list was loaded (a request's status moves with them: approved,
/// provisioning, ready or failed). The first snapshot after connecting is compared with what
/// the server rendered, so a change made meanwhile is not missed either. Answers that arrive
/// out of order are dropped: only the latest reload is shown.
#[cfg(feature = "hydrate")]
fn reload_requests_on_change(
    environment_id: uuid::Uuid,
    rendered: berth_domain::EnvironmentStatus,
    live: RwSignal<Option<Provisioning>>,
    requests: RwSignal<Vec<crate::api::requests::RequestView>>,
) {
    type Key = (
        Option<berth_domain::EnvironmentStatus>,
        Option<(uuid::Uuid, berth_domain::RunStatus)>,
    );
    // What the list shows: the environment's status, and (once a snapshot told us) the run's.
    let initial: Key = (Some(rendered), None);
    let loaded_for = StoredValue::new(initial);
    let latest = StoredValue::new(0u64);
    Effect::new(move |_| {
        let Some(key) = live.with(|p| {
            p.as_ref().map(|p| {
                (
                    p.environment_status,
                    p.run.as_ref().map(|r| (r.id, r.status)),
                )
            })
        }) else {
            return;
        };
        let (was_status, was_run) = loaded_for.get_value();
        let changed = key.0 != was_status || (was_run.is_some() && key.1 != was_run);
        loaded_for.set_value(key);
        if !changed {
            return;
        }
        let seq = latest.get_value() + 1;
        latest.set_value(seq);
        leptos::task::spawn_local(async move {
            if let Ok(env) = get_environment(environment_id).await {
                if latest.try_get_value() == Some(seq) {
                    let _ = requests.try_set(env.requests);
                }
            }
        });
    });
}
