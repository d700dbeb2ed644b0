//! Admins' webhook pages: the endpoints with a form to register one (its secret shown once),
//! and each endpoint's page with its delivery log, a redeliver button per message, and the
//! notice when Berth turned it off. Admins only (checked on the server).

use berth_domain::{EventType, SpecErrors};
use leptos::prelude::*;
use leptos_meta::Title;

use super::{id_param, new_request::Field};
use crate::{
    api::webhooks::{
        get_webhook, list_webhooks, ChangeWebhook, CreateWebhook, DeliveryView, EndpointDetail,
        RedeliverWebhook,
    },
    components::{
        forms::SecretSubmit,
        status::{ErrorNote, When},
    },
    error::AppError,
};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let list = Resource::new(move || create.version().get(), |_| list_webhooks());
    let field_errors = move || match create.value().get() {
        Some(Err(AppError::Fields(e))) => e,
        _ => SpecErrors::default(),
    };
    let error_for = move |field: &'static str| {
        Signal::derive(move || field_errors().get(field).map(str::to_owned))
    };

    view! {
        <Title text="Webhooks" />
        <section class="panel">
            <h1>"Webhooks"</h1>
            <p class="muted">
                "Berth POSTs each chosen event to these endpoints, signed as the Standard Webhooks \
                 specification says (see the API documentation), and retries for about a day."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || list.get().map(|r| r.map(|l| {
                    let unsealed = (!l.secrets_sealed).then(|| view! {
                        <p class="notice" role="status" data-testid="secrets-unsealed">
                            "Signing secrets are stored unsealed: this server has no sealing key. \
                             Whoever runs Berth can set one (BERTH_SEALING_KEY, described in \
                             docs/security.md); the secrets are then sealed at its next start."
                        </p>
                    });
                    (unsealed, l.endpoints)
                })).map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                    Ok((unsealed, list)) if list.is_empty() => view! {
                        {unsealed}
                        <p class="muted" data-testid="no-webhooks">"No endpoint yet."</p>
                    }.into_any(),
                    Ok((unsealed, list)) => view! {
                        {unsealed}
                        <table class="list" data-testid="webhooks">
                            <thead><tr>
                                <th scope="col">"Endpoint"</th>
                                <th scope="col">"Events"</th>
                                <th scope="col">"State"</th>
                                <th scope="col" class="num">"Waiting"</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|e| view! {
                                    <tr>
                                        <td><a href=format!("/admin/webhooks/{}", e.id)>{e.url}</a>
                                            <br /><span class="muted">{e.description}</span></td>
                                        <td>{e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                        <td>{if e.enabled { "on" } else { "off" }}</td>
                                        <td class="num">{e.pending}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
        <section class="panel narrow" aria-labelledby="new-webhook">
            <h2 id="new-webhook">"Register an endpoint"</h2>
            {move || match create.value().get() {
                Some(Ok(created)) => Some(view! {
                    <div class="alert" role="status" data-testid="webhook-secret">
                        <p>"Registered. Its signing secret is shown this once; keep it where the receiver can read it:"</p>
                        <p><code>{created.secret}</code></p>
                        <p><a href=format!("/admin/webhooks/{}", created.id)>"Its page and delivery log →"</a></p>
                    </div>
                }.into_any()),
                Some(Err(AppError::Fields(_))) | None => None,
                Some(Err(e)) => Some(view! { <ErrorNote error=e /> }.into_any()),
            }}
            <ActionForm action=create attr:class="form">
                <Field label="URL" name="url" error=error_for("url") hint="Where Berth POSTs: https://…, on a public address.">
                    <input id="url" name="url" type="url" required maxlength="2000"
                        aria-describedby="url-hint url-error"
                        aria-invalid=move || error_for("url").get().is_some().to_string() />
                </Field>
                <Field label="Description" name="description" error=error_for("description")
                    hint="What it is for (optional).">
                    <input id="description" name="description" type="text" maxlength="200"
                        aria-describedby="description-hint description-error" />
                </Field>
                <fieldset class="field" aria-describedby="events-error">
                    <legend>"Events"</legend>
                    {EventType::ALL.into_iter().map(|t| view! {
                        <label class="check">
                            <input type="checkbox" name=format!("events[{}]", t.as_str()) value="on" />
                            " " {t.label()} " " <code>{t.as_str()}</code>
                        </label>
                    }).collect_view()}
                    <p class="field-error" id="events-error" role="alert">{move || error_for("events").get()}</p>
                </fieldset>
                <div class="actions">
                    <SecretSubmit label="Register" pending_label="Registering…" pending=create.pending() />
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn WebhookPage() -> impl IntoView {
    let id = id_param();
    let change = ServerAction::<ChangeWebhook>::new();
    let redeliver = ServerAction::<RedeliverWebhook>::new();
    let detail = Resource::new(
        move || (id.get(), change.version().get(), redeliver.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_webhook(id).await,
                None => Err(AppError::NotFound),
            }
        },
    );
    let action_error = move || {
        change
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| redeliver.value().get().and_then(Result::err))
    };
    view! {
        <Title text="Webhook endpoint" />
        {move || action_error().map(|e| view! { <ErrorNote error=e /> })}
        {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! {
            <p class="notice" role="status">"Done. " <a href="/admin/webhooks">"All endpoints"</a></p>
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || detail.get().map(|r| match r {
                Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                Ok(d) => view! { <EndpointView d change redeliver /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn EndpointView(
    d: EndpointDetail,
    change: ServerAction<ChangeWebhook>,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let e = d.endpoint;
    let id = e.id.to_string();
    let (switch_id, delete_id) = (id.clone(), id.clone());
    let switch = if e.enabled {
        ("disable", "Turn off")
    } else {
        ("enable", "Turn on again")
    };
    view! {
        <section class="panel">
            <h1>"Webhook endpoint"</h1>
            {(!e.enabled).then(|| view! {
                <div class="alert alert-error" role="alert" data-testid="webhook-disabled">
                    <p>"This endpoint is off: nothing is sent to it. "
                        {e.disabled_reason.clone()}</p>
                    <p>"Turning it on again sends what waits for it."</p>
                </div>
            })}
            <dl class="facts">
                <dt>"URL"</dt><dd><code>{e.url}</code></dd>
                <dt>"Description"</dt><dd>{if e.description.is_empty() { "—".to_string() } else { e.description }}</dd>
                <dt>"Events"</dt><dd>{e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")}</dd>
                <dt>"Registered"</dt><dd>{e.created_by} ", " <When stamp=e.created_at /></dd>
            </dl>
            <div class="actions">
                <ActionForm action=change attr:class="inline">
                    <input type="hidden" name="id" value=switch_id />
                    <input type="hidden" name="action" value=switch.0 />
                    <button type="submit" class="secondary">{switch.1}</button>
                </ActionForm>
                <ActionForm action=change attr:class="inline">
                    <input type="hidden" name="id" value=delete_id />
                    <input type="hidden" name="action" value="delete" />
                    <button type="submit" class="danger">"Remove"</button>
                </ActionForm>
            </div>
        </section>
        <section class="panel" aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">"Deliveries"</h2>
            <table class="list" data-testid="deliveries">
                <thead><tr>
                    <th scope="col">"Message"</th>
                    <th scope="col">"State"</th>
                    <th scope="col" class="num">"Attempts"</th>
                    <th scope="col">"Last answer"</th>
                    <th scope="col">"Next attempt"</th>
                    <th scope="col"><span class="visually-hidden">"Redeliver"</span></th>
                </tr></thead>
                <tbody>
                    {d.deliveries.into_iter().map(|l| view! { <DeliveryLine l id=id.clone() redeliver /> }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn DeliveryLine(
    l: DeliveryView,
    id: String,
    redeliver: ServerAction<RedeliverWebhook>,
) -> impl IntoView {
    let answer = match (l.last_status, l.last_error, l.last_duration_ms) {
        (Some(code), _, Some(ms)) => format!("HTTP {code} in {ms} ms"),
        (_, Some(error), Some(ms)) => format!("{error} ({ms} ms)"),
        _ => "—".into(),
    };
    let state = l.status.clone();
    view! {
        <tr data-status=state>
            <td>
                <code>{l.message_id}</code> " " {l.event_type} <br />
                <When stamp=l.created_at />
                {l.environment_id.map(|e| view! { " · " <a href=format!("/environments/{e}")>"environment"</a> })}
            </td>
            <td>{l.status}</td>
            <td class="num">{l.attempts}</td>
            <td>{answer}</td>
            <td>{l.next_attempt_at.map(|s| view! { <When stamp=s /> })}</td>
            <td>
                <ActionForm action=redeliver attr:class="inline">
                    <input type="hidden" name="id" value=id />
                    <input type="hidden" name="delivery_id" value=l.id.to_string() />
                    <button type="submit" class="secondary">"Redeliver"</button>
                </ActionForm>
            </td>
        </tr>
    }
}
