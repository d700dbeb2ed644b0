//! One request: what was asked, its status, and the decision for admins.

use leptos::prelude::*;
use leptos_meta::Title;

use super::id_param;
use super::plan::PlanPanel;
use crate::{
    api::plans::{get_request_plan, PlanView, RefreshPlan},
    api::requests::{get_request, DecideRequest, RequestView, WithdrawRequest},
    components::status::{ErrorNote, StatusBadge, When},
    error::AppError,
};

#[component]
pub fn RequestPage() -> impl IntoView {
    let id = id_param();
    let decide = ServerAction::<DecideRequest>::new();
    let withdraw = ServerAction::<WithdrawRequest>::new();
    let refresh = ServerAction::<RefreshPlan>::new();
    // Bumped by the live stream whenever the environment changes (a plan computed, a run moved).
    let changed = RwSignal::new(0u32);
    let request = Resource::new(
        move || {
            (
                id.get(),
                decide.version().get(),
                withdraw.version().get(),
                changed.get(),
            )
        },
        |(id, _, _, _)| async move {
            match id {
                Some(id) => get_request(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    let plan = Resource::new(
        move || {
            (
                id.get(),
                decide.version().get(),
                refresh.version().get(),
                changed.get(),
            )
        },
        |(id, _, _, _)| async move {
            match id {
                Some(id) => get_request_plan(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    // The stream is opened once the environment is known and stays open while the page does:
    // the effect reads only this (sticky) id, not the request itself, so the refetches the
    // stream causes do not re-run it (a re-run would close the stream, and with it every later
    // update, such as a plan computed after the first snapshot).
    #[cfg(feature = "hydrate")]
    {
        let environment_id = Memo::new(move |known: Option<&Option<uuid::Uuid>>| {
            request
                .get()
                .and_then(Result::ok)
                .map(|r| r.environment_id)
                .or_else(|| known.copied().flatten())
        });
        Effect::new(move |_| {
            if let Some(id) = environment_id.get() {
                watch(id, changed);
            }
        });
    }

    view! {
        <Title text="Request" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                request
                    .get()
                    .map(|r| match r {
                        Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                        Ok(r) => view! { <RequestDetail r decide withdraw plan /> }.into_any(),
                    })
            }}
        </Transition>
        <Transition fallback=|| ()>
            {move || plan.get().map(|p| match p {
                Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                Ok(Some(p)) => view! { <PlanPanel plan=p refresh=Some(refresh) /> }.into_any(),
                Ok(None) => view! {
                    <p class="muted" data-testid="no-plan">"This request has no plan (it was made before plans existed)."</p>
                }.into_any(),
            })}
        </Transition>
    }
}

/// Follows the environment's live stream and bumps `changed` on every change; closed when the
/// page goes away. The browser reconnects by itself.
#[cfg(feature = "hydrate")]
fn watch(environment_id: uuid::Uuid, changed: RwSignal<u32>) {
    use wasm_bindgen::{closure::Closure, JsCast};
    let Ok(source) = web_sys::EventSource::new(&format!("/environments/{environment_id}/progress"))
    else {
        return;
    };
    // Every message, the first (the snapshot on connect) included: a plan computed or a run
    // moved between the server's render and this connection shows only this way.
    let on_progress = Closure::<dyn FnMut()>::new(move || changed.update(|n| *n += 1));
    let _ =
        source.add_event_listener_with_callback("progress", on_progress.as_ref().unchecked_ref());
    on_progress.forget();
    let source = StoredValue::new_local(source);
    on_cleanup(move || source.with_value(|s| s.close()));
}

#[component]
fn RequestDetail(
    r: RequestView,
    decide: ServerAction<DecideRequest>,
    withdraw: ServerAction<WithdrawRequest>,
    plan: Resource<Result<Option<PlanView>, AppError>>,
) -> impl IntoView {
    let decide_error = move || decide.value().get().and_then(Result::err);
    let withdraw_error = move || withdraw.value().get().and_then(Result::err);
    let id = r.id.to_string();
    view! {
        <section class="panel">
            <div class="panel-head">
                <h1>"Request for " {r.name.clone()}</h1>
                <span data-testid="request-status">
                    <StatusBadge status=r.status />
                </span>
            </div>
            <dl class="facts">
                <dt>"Business unit"</dt>
                <dd>{r.name.clone()}</dd>
                <dt>"Short name"</dt>
                <dd><code>{r.slug.clone()}</code></dd>
                <dt>"Blueprint"</dt>
                <dd>{r.blueprint.label()}</dd>
                <dt>"Size"</dt>
                <dd>{r.size.label()}</dd>
                <dt>"Owner contact"</dt>
                <dd>{r.owner_contact.clone()}</dd>
                <dt>"Description"</dt>
                <dd class="prewrap">{if r.description.is_empty() { "—".to_string() } else { r.description.clone() }}</dd>
                <dt>"Requested by"</dt>
                <dd>{r.requested_by.clone()} ", " <When stamp=r.requested_at.clone() /></dd>
                {r.decided_by.clone().map(|by| view! {
                    <dt>"Decided by"</dt>
                    <dd>{by} {r.decided_at.clone().map(|s| view! { ", " <When stamp=s /> })}</dd>
                })}
                {r.decision_note.clone().map(|n| view! {
                    <dt>"Note"</dt>
                    <dd class="prewrap">{n}</dd>
                })}
            </dl>
            <p>
                <a href=format!("/environments/{}", r.environment_id)>"Environment page and timeline →"</a>
            </p>
        </section>
        {match r.can_decide.clone() {
            Ok(()) => {
                let (approve_id, reject_id) = (id.clone(), id);
                view! {
                <section class="panel" aria-labelledby="decide-title">
                    <h2 id="decide-title">"Your decision"</h2>
                    {move || decide_error().map(|e| view! { <ErrorNote error=e /> })}
                    <div class="decide">
                        <ActionForm action=decide attr:class="form">
                            <input type="hidden" name="id" value=approve_id />
                            <input type="hidden" name="decision" value="approve" />
                            <div class="field">
                                <label for="approve-note">"Note (optional)"</label>
                                <textarea id="approve-note" name="note" rows="2" maxlength="1000"></textarea>
                            </div>
                            {move || {
                                let current = plan.get().and_then(Result::ok).flatten();
                                let hash = current.as_ref().and_then(|p| p.hash.clone());
                                let over = current.as_ref().is_some_and(PlanView::over_capacity);
                                let ready = hash.is_some();
                                view! {
                                    <input type="hidden" name="plan_hash" value=hash.clone().unwrap_or_default() />
                                    {(!ready).then(|| view! {
                                        <p class="field-hint" data-testid="approve-waits">"Approval opens once the plan is ready."</p>
                                    })}
                                    {ready.then(|| view! {
                                        <p class="field-hint">"You approve plan " <code>{hash.clone().map(|h| h[..12].to_owned())}</code> " exactly as shown below."</p>
                                    })}
                                    {over.then(|| view! {
                                        <div class="field">
                                            <label>
                                                <input type="checkbox" name="override_capacity" value="yes" />
                                                " Approve over the cluster's capacity"
                                            </label>
                                            <label for="override-reason">"Reason for the override (required when ticked)"</label>
                                            <textarea id="override-reason" name="override_reason" rows="2" maxlength="1000"></textarea>
                                        </div>
                                    })}
                                    <button type="submit" class="primary"
                                        disabled=move || decide.pending().get() || !ready>"Approve"</button>
                                }
                            }}
                        </ActionForm>
                        <ActionForm action=decide attr:class="form">
                            <input type="hidden" name="id" value=reject_id />
                            <input type="hidden" name="decision" value="reject" />
                            <div class="field">
                                <label for="reject-note">"Reason for rejecting (required)"</label>
                                <textarea id="reject-note" name="note" rows="2" maxlength="1000" required></textarea>
                            </div>
                            <button type="submit" class="danger" disabled=move || decide.pending().get()>"Reject"</button>
                        </ActionForm>
                    </div>
                </section>
            }.into_any()
            }
            Err(reason) => view! {
                <p class="notice" data-testid="no-decision">{reason}</p>
            }.into_any(),
        }}
        {r.can_withdraw.then(|| view! {
            <section class="panel">
                {move || withdraw_error().map(|e| view! { <ErrorNote error=e /> })}
                <ActionForm action=withdraw attr:class="inline">
                    <input type="hidden" name="id" value=r.id.to_string() />
                    <button type="submit" class="secondary">"Withdraw this request"</button>
                </ActionForm>
            </section>
        })}
    }
}
