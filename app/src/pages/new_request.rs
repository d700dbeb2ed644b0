//! The request form for a new business unit. Fields are checked in the browser as you type
//! (with the same domain rules) and again on the server, which has the last word.

use berth_domain::{BlueprintName, RequestSpec, Role, Size, SpecErrors, UnitSlug};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::requests::{SubmitOutcome, SubmitRequest},
    components::{layout::CurrentUser, status::ErrorNote},
    error::AppError,
};

#[component]
pub fn NewRequestPage() -> impl IntoView {
    let me = expect_context::<CurrentUser>().0;
    view! {
        <Title text="Request a business unit" />
        <section class="panel narrow">
            <h1>"Request a business unit"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    me.get()
                        .map(|me| match me {
                            None => {
                                view! {
                                    <ErrorNote error=AppError::Unauthorized("Sign in first.".into()) />
                                }
                                    .into_any()
                            }
                            Some(m) if !m.roles.contains(&Role::Manager) => {
                                view! {
                                    <ErrorNote error=AppError::Forbidden(
                                        "Only a manager may request a business unit.".into(),
                                    ) />
                                }
                                    .into_any()
                            }
                            Some(_) => view! { <RequestForm /> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

#[component]
fn RequestForm() -> impl IntoView {
    let submit = ServerAction::<SubmitRequest>::new();
    let name = RwSignal::new(String::new());
    let slug = RwSignal::new(String::new());
    let slug_touched = RwSignal::new(false);

    let server_errors = move || match submit.value().get() {
        Some(Ok(SubmitOutcome::Invalid(e))) => e,
        _ => SpecErrors::default(),
    };
    let other_error = move || match submit.value().get() {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    let error_for = move |field: &'static str| {
        Signal::derive(move || server_errors().get(field).map(str::to_owned))
    };
    let suggested = move || UnitSlug::suggest(&name.get());
    let slug_value = move || {
        if slug_touched.get() {
            slug.get()
        } else {
            suggested()
        }
    };
    // The browser-side preview of the same check the server runs.
    let slug_hint = move || {
        let s = slug_value();
        if s.is_empty() {
            return None;
        }
        RequestSpec::parse("xx", &s, "", "a@b.cd", "insight", "small")
            .err()
            .and_then(|e| e.get("slug").map(str::to_owned))
    };

    view! {
        <ActionForm action=submit attr:class="form" attr:novalidate=true>
            {move || other_error().map(|e| view! { <ErrorNote error=e /> })}
            <Field label="Business unit name" name="name" error=error_for("name")
                hint="As people call it, e.g. \"California charging stations\".">
                <input
                    id="name"
                    name="name"
                    type="text"
                    required
                    maxlength="64"
                    autocomplete="off"
                    aria-describedby="name-hint name-error"
                    aria-invalid=move || error_for("name").get().is_some().to_string()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
            </Field>
            <Field label="Short name" name="slug" error=error_for("slug")
                hint="Names the namespace, the AWS stack and the tags: lower-case letters, digits and hyphens. Suggested from the name.">
                <input
                    id="slug"
                    name="slug"
                    type="text"
                    maxlength="40"
                    autocomplete="off"
                    aria-describedby="slug-hint slug-error"
                    aria-invalid=move || error_for("slug").get().is_some().to_string()
                    prop:value=slug_value
                    on:input=move |ev| {
                        slug_touched.set(true);
                        slug.set(event_target_value(&ev));
                    }
                />
                {move || slug_hint().map(|h| view! { <p class="field-hint warn">{h}</p> })}
            </Field>
            <Field label="Description" name="description" error=error_for("description")
                hint="What the unit will run, for the reviewers.">
                <textarea id="description" name="description" rows="3" maxlength="2000"
                    aria-describedby="description-hint description-error"></textarea>
            </Field>
            <Field label="Owner contact" name="owner_contact" error=error_for("owner_contact")
                hint="The e-mail address of the person answerable for the unit.">
                <input id="owner_contact" name="owner_contact" type="email" required autocomplete="email"
                    aria-describedby="owner_contact-hint owner_contact-error"
                    aria-invalid=move || error_for("owner_contact").get().is_some().to_string() />
            </Field>
            <Field label="Blueprint" name="blueprint" error=error_for("blueprint")
                hint="The set of applications the environment gets.">
                <select id="blueprint" name="blueprint" aria-describedby="blueprint-hint blueprint-error">
                    {BlueprintName::ALL
                        .into_iter()
                        .map(|b| view! { <option value=b.as_str()>{b.label()}</option> })
                        .collect_view()}
                </select>
            </Field>
            <Field label="Size" name="size" error=error_for("size") hint="Capacity of the namespace.">
                <select id="size" name="size" aria-describedby="size-hint size-error">
                    {Size::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str()>{s.label()}</option> })
                        .collect_view()}
                </select>
            </Field>
            <div class="actions">
                <button type="submit" class="primary" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Submitting…" } else { "Submit request" }}
                </button>
            </div>
        </ActionForm>
    }
}

/// A labelled form field with its hint and its error right below it.
#[component]
pub(crate) fn Field(
    label: &'static str,
    name: &'static str,
    hint: &'static str,
    error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=name>{label}</label>
            {children()}
            <p class="field-hint" id=format!("{name}-hint")>{hint}</p>
            <p class="field-error" id=format!("{name}-error") role="alert" data-testid=format!("{name}-error")>
                {move || error.get()}
            </p>
        </div>
    }
}
