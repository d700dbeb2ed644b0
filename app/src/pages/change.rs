//! Asking for a change to an environment (a form that starts from its current spec) and for its
//! decommission (typing its name to confirm). The server checks everything again, names each
//! refused field, and stores nothing unless all of it holds.

use berth_domain::Size;
use leptos::prelude::*;
use leptos_meta::Title;

use super::new_request::Field;
use super::{for_id, id_param};
use crate::{
    api::lifecycle::{
        get_change_form, ChangeFormView, PreviousSpecView, RequestChange, RequestDecommission,
        RequestReturn,
    },
    components::status::ErrorNote,
    error::AppError,
};

/// The message of the server's refusal for one field (`name`, `overrides.dsm.replicas`, …).
fn field_error<T: Clone + Send + Sync + 'static>(
    result: Signal<Option<Result<T, AppError>>>,
    field: String,
) -> Signal<Option<String>> {
    Signal::derive(move || match result.get() {
        Some(Err(AppError::Fields(e))) => e.get(&field).map(str::to_owned),
        _ => None,
    })
}

/// Anything but an error of a field the form shows, shown above the form.
fn form_error<T: Clone + Send + Sync + 'static>(
    result: Signal<Option<Result<T, AppError>>>,
) -> impl Fn() -> Option<AppError> {
    move || match result.get() {
        // Errors about the form as a whole, or about no field the form shows (`overrides`,
        // `overrides.<app>`: only a hand-made call sends an unknown app), above it.
        Some(Err(AppError::Fields(e))) => {
            let loose: Vec<&str> = e
                .0
                .iter()
                .filter(|f| {
                    f.field == "form"
                        || (f.field.starts_with("overrides") && f.field.matches('.').count() < 2)
                })
                .map(|f| f.message.as_str())
                .collect();
            (!loose.is_empty()).then(|| AppError::Invalid(loose.join(" ")))
        }
        Some(Err(e)) => Some(e),
        _ => None,
    }
}

fn load_form() -> Resource<Result<ChangeFormView, AppError>> {
    let id = id_param();
    Resource::new(move || id.get(), |id| for_id(id, get_change_form))
}

/// Which of the two requests a page asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Change,
    Decommission,
}

/// The page around either form: the environment's current spec loaded, then the form, or why
/// the viewer may not ask for it now.
#[component]
fn AskPage(ask: Ask) -> impl IntoView {
    let form = load_form();
    let (title, verb) = match ask {
        Ask::Change => ("Request a change", "Change "),
        Ask::Decommission => ("Decommission an environment", "Decommission "),
    };
    view! {
        <Title text=title />
        <section class="panel narrow">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    form.get()
                        .map(|f| match f {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(f) => {
                                let allowed = match ask {
                                    Ask::Change => f.can_change.clone(),
                                    Ask::Decommission => f.can_decommission.clone(),
                                };
                                match (allowed, ask) {
                                    (Err(why), _) => view! {
                                        <h1>{verb} {f.name.clone()}</h1>
                                        <ErrorNote error=AppError::Forbidden(why) />
                                    }
                                        .into_any(),
                                    (Ok(()), Ask::Change) => view! { <ChangeForm form=f /> }.into_any(),
                                    (Ok(()), Ask::Decommission) => {
                                        view! { <DecommissionForm form=f /> }.into_any()
                                    }
                                }
                            }
                        })
                }}
            </Suspense>
        </section>
    }
}

#[component]
pub fn ChangePage() -> impl IntoView {
    view! { <AskPage ask=Ask::Change /> }
}

#[component]
pub fn DecommissionPage() -> impl IntoView {
    view! { <AskPage ask=Ask::Decommission /> }
}

#[component]
fn ChangeForm(form: ChangeFormView) -> impl IntoView {
    let submit = ServerAction::<RequestChange>::new();
    let value = submit.value();
    let result = Signal::derive(move || value.get());
    let error_for = move |field: &str| field_error(result, field.to_owned());
    let env_link = format!("/environments/{}", form.environment_id);
    let version_choices = form.newer_versions.clone();
    view! {
        <h1>"Change " {form.name.clone()}</h1>
        <p class="muted">
            "The form starts from what the environment runs now. An admin reviews the plan of "
            "exactly what differs before anything changes."
        </p>
        <ActionForm action=submit attr:class="form" attr:novalidate=true>
            {move || form_error(result)().map(|e| view! { <ErrorNote error=e /> })}
            <input type="hidden" name="environment_id" value=form.environment_id.to_string() />
            <Field label="Business unit name" name="name" error=error_for("name")
                hint="Cannot change: it names the stack and the namespace.">
                <input id="name" name="name" type="text" readonly value=form.name.clone()
                    aria-describedby="name-hint name-error" />
            </Field>
            <Field label="Short name" name="slug" error=error_for("slug")
                hint="Cannot change: it names the stack and the namespace.">
                <input id="slug" name="slug" type="text" readonly value=form.slug.clone()
                    aria-describedby="slug-hint slug-error" />
            </Field>
            <Field label="Description" name="description" error=error_for("description")
                hint="What the unit runs, for the reviewers.">
                <textarea id="description" name="description" rows="3" maxlength="2000"
                    aria-describedby="description-hint description-error">
                    {form.description.clone()}
                </textarea>
            </Field>
            <Field label="Owner contact" name="owner_contact" error=error_for("owner_contact")
                hint="The e-mail address of the person answerable for the unit.">
                <input id="owner_contact" name="owner_contact" type="email" required
                    value=form.owner_contact.clone()
                    aria-describedby="owner_contact-hint owner_contact-error" />
            </Field>
            <Field label="Size" name="size" error=error_for("size") hint="Capacity of the namespace.">
                <select id="size" name="size" aria-describedby="size-hint size-error">
                    {Size::ALL
                        .into_iter()
                        .map(|s| {
                            view! {
                                <option value=s.as_str() selected=s == form.size>{s.label()}</option>
                            }
                        })
                        .collect_view()}
                </select>
            </Field>
            <Field label="Blueprint version" name="blueprint_version" error=error_for("blueprint_version")
                hint="A newer published version upgrades the charts it changes.">
                <select id="blueprint_version" name="blueprint_version"
                    aria-describedby="blueprint_version-hint blueprint_version-error">
                    <option value="">{format!("{} (deployed)", form.blueprint_version)}</option>
                    {version_choices
                        .into_iter()
                        .map(|v| view! { <option value=v.clone()>{v.clone()}</option> })
                        .collect_view()}
                </select>
            </Field>
            <fieldset class="overrides">
                <legend>"Application settings"</legend>
                {form
                    .changeable
                    .iter()
                    .map(|c| {
                        let field = c.field.clone();
                        let error = error_for(&field);
                        let input_name = format!("overrides[{}.{}]", c.app, c.key);
                        let label = format!("{} ({})", c.title, c.app);
                        view! {
                            <div class="field" class:has-error=move || error.get().is_some()>
                                <label for=field.clone()>{label}</label>
                                <input
                                    id=field.clone()
                                    name=input_name
                                    type=if c.integer { "number" } else { "text" }
                                    value=c.current.clone()
                                    aria-describedby=format!("{field}-hint {field}-error")
                                    aria-invalid=move || error.get().is_some().to_string()
                                />
                                <p class="field-hint" id=format!("{field}-hint")>
                                    {format!("{} {}", c.description, c.hint)}
                                </p>
                                <p class="field-error" id=format!("{field}-error") role="alert"
                                    data-testid=format!("{field}-error")>
                                    {move || error.get()}
                                </p>
                            </div>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <div class="actions">
                <a href=env_link>"Cancel"</a>
                <button type="submit" class="primary" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Submitting…" } else { "Request the change" }}
                </button>
            </div>
        </ActionForm>
    }
}

#[component]
fn DecommissionForm(form: ChangeFormView) -> impl IntoView {
    let submit = ServerAction::<RequestDecommission>::new();
    let value = submit.value();
    let result = Signal::derive(move || value.get());
    let confirm_error = field_error(result, "confirm".into());
    let name = form.name.clone();
    view! {
        <h1>"Decommission " {form.name.clone()}</h1>
        <p>
            "Removes every application, the namespace and its Rancher project, and the AWS stack "
            "of this unit, then checks that nothing remains. Another admin approves the plan first; "
            "it lists what is kept (the S3 bucket, and the secrets for their recovery window). "
            "The history stays readable."
        </p>
        <ActionForm action=submit attr:class="form" attr:novalidate=true>
            {move || form_error(result)().map(|e| view! { <ErrorNote error=e /> })}
            <input type="hidden" name="environment_id" value=form.environment_id.to_string() />
            <div class="field" class:has-error=move || confirm_error.get().is_some()>
                <label for="confirm">{format!("Type \u{201c}{name}\u{201d} to confirm")}</label>
                <input id="confirm" name="confirm" type="text" autocomplete="off" required
                    aria-describedby="confirm-error"
                    aria-invalid=move || confirm_error.get().is_some().to_string() />
                <p class="field-error" id="confirm-error" role="alert" data-testid="confirm-error">
                    {move || confirm_error.get()}
                </p>
            </div>
            <div class="actions">
                <a href=format!("/environments/{}", form.environment_id)>"Cancel"</a>
                <button type="submit" class="danger" disabled=move || submit.pending().get()>
                    "Request decommission"
                </button>
            </div>
        </ActionForm>
    }
}

/// Asks for a return to the spec before the last change, saying what it brings back.
#[component]
fn ReturnForm(environment_id: uuid::Uuid, previous: PreviousSpecView) -> impl IntoView {
    let submit = ServerAction::<RequestReturn>::new();
    let value = submit.value();
    let result = Signal::derive(move || value.get());
    let settings = if previous.overrides.is_empty() {
        "the blueprint's defaults".to_owned()
    } else {
        previous.overrides.join(", ")
    };
    view! {
        <ActionForm action=submit attr:class="return" attr:data-testid="return">
            {move || form_error(result)().map(|e| view! { <ErrorNote error=e /> })}
            <input type="hidden" name="environment_id" value=environment_id.to_string() />
            <p class="muted">
                "Before the last change: size " {previous.size.label()} ", blueprint version "
                {previous.blueprint_version.clone()} ", application settings " {settings}
                ". A return asks for exactly that (description and owner stay); an admin "
                "reviews its plan like any change."
            </p>
            <button type="submit" disabled=move || submit.pending().get()>
                "Return to the previous spec"
            </button>
        </ActionForm>
    }
}

/// On the environment page: what runs now (blueprint version, each app's chart version and Helm
/// revision) and the ways to ask for a change or a decommission. `changed` is bumped by the live
/// stream, so the revisions follow a run as it goes.
/// What the environment page's "Running now" panel shows, loaded by the page itself (see
/// `environment.rs` for why) and read again whenever `changed` moves.
#[derive(Clone, Copy)]
pub struct LifeData {
    releases: Resource<Result<Vec<crate::api::lifecycle::ReleaseView>, AppError>>,
    form: Resource<Result<ChangeFormView, AppError>>,
}

impl LifeData {
    pub fn load(id: Memo<Option<uuid::Uuid>>, changed: Signal<u32>) -> Self {
        use crate::api::lifecycle::get_releases;
        Self {
            releases: Resource::new(
                move || (id.get(), changed.get()),
                |(id, _)| for_id(id, get_releases),
            ),
            form: Resource::new(
                move || (id.get(), changed.get()),
                |(id, _)| for_id(id, get_change_form),
            ),
        }
    }
}

#[component]
pub fn EnvironmentLife(environment_id: uuid::Uuid, data: LifeData) -> impl IntoView {
    use crate::components::status::When;
    let LifeData { releases, form } = data;
    view! {
        <section class="panel" data-testid="environment-life">
            <h2>"Running now"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    form.get()
                        .and_then(Result::ok)
                        .map(|f| {
                            view! {
                                <p>
                                    "Blueprint " {f.blueprint.clone()} " "
                                    <span data-testid="blueprint-version">{f.blueprint_version.clone()}</span>
                                    ", size " {f.size.label()}
                                </p>
                                <p class="actions">
                                    {f.can_change.is_ok().then(|| view! {
                                        <a class="button" href=format!("/environments/{environment_id}/change")>"Request a change"</a>
                                    })}
                                    {f.can_decommission.is_ok().then(|| view! {
                                        <a class="button danger" href=format!("/environments/{environment_id}/decommission")>"Decommission"</a>
                                    })}
                                </p>
                                {f.previous.clone().filter(|_| f.can_return.is_ok()).map(|p| {
                                    view! { <ReturnForm environment_id=environment_id previous=p /> }
                                })}
                            }
                        })
                }}
                {move || {
                    releases.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(rows) if rows.is_empty() => view! {
                                <p class="muted" data-testid="no-releases">"No app is deployed."</p>
                            }.into_any(),
                            Ok(rows) => view! {
                                <div class="table-wrap">
                                    <table data-testid="releases">
                                        <thead><tr>
                                            <th scope="col">"App"</th>
                                            <th scope="col">"Chart version"</th>
                                            <th scope="col">"Helm revision"</th>
                                            <th scope="col">"Changed"</th>
                                        </tr></thead>
                                        <tbody>
                                            {rows.into_iter().map(|r| view! {
                                                <tr data-app=r.app.clone()>
                                                    <td>{r.app.clone()}</td>
                                                    <td>{r.chart_version}</td>
                                                    <td data-testid="revision">{r.revision}</td>
                                                    <td><When stamp=r.updated_at /></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}
