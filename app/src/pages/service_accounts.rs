//! The admins' page for what belongs to the whole company: the longest a token may live, and
//! service accounts (users that never sign in, acting through tokens an admin issues) with
//! their tokens. Checked on the server (`Action::Administer`).

use berth_domain::{Role, SpecErrors};
use leptos::prelude::*;
use leptos_meta::Title;
use uuid::Uuid;

use super::tokens::{messages, token_table, FormField, ShownSecret, TokenFields};
use crate::{
    api::{
        admin::{
            admin_overview, AdminView, CreateServiceAccount, FormOutcome, IssueServiceToken,
            RevokeServiceToken, ServiceAccountView, SetMaxTokenDays, SetServiceAccountDisabled,
        },
        tokens::{IssueOutcome, TokenView},
    },
    components::{
        forms::SecretSubmit,
        status::{ErrorNote, When},
    },
};

/// The page's actions, shared by its sections.
#[derive(Clone, Copy)]
struct Actions {
    create: ServerAction<CreateServiceAccount>,
    issue: ServerAction<IssueServiceToken>,
    revoke: ServerAction<RevokeServiceToken>,
    toggle: ServerAction<SetServiceAccountDisabled>,
    settings: ServerAction<SetMaxTokenDays>,
    /// The account whose token form was sent last (its errors show there).
    issuing_for: RwSignal<Option<Uuid>>,
}

#[component]
pub fn ServiceAccountsPage() -> impl IntoView {
    let actions = Actions {
        create: ServerAction::new(),
        issue: ServerAction::new(),
        revoke: ServerAction::new(),
        toggle: ServerAction::new(),
        settings: ServerAction::new(),
        issuing_for: RwSignal::new(None),
    };
    // Read again after every change that went through; a refused form is not re-rendered, so
    // what was typed stays.
    let changed = RwSignal::new(0u32);
    let bump = move || changed.update(|n| *n += 1);
    Effect::new(move |_| {
        if matches!(actions.create.value().get(), Some(Ok(FormOutcome::Saved))) {
            bump();
        }
    });
    Effect::new(move |_| {
        if matches!(actions.settings.value().get(), Some(Ok(FormOutcome::Saved))) {
            bump();
        }
    });
    Effect::new(move |_| {
        if matches!(
            actions.issue.value().get(),
            Some(Ok(IssueOutcome::Issued { .. }))
        ) {
            bump();
        }
    });
    Effect::new(move |_| {
        if matches!(actions.revoke.value().get(), Some(Ok(()))) {
            bump();
        }
    });
    Effect::new(move |_| {
        if matches!(actions.toggle.value().get(), Some(Ok(()))) {
            bump();
        }
    });
    Effect::new(move |_| {
        if let Some(input) = actions.issue.input().get() {
            actions.issuing_for.set(Some(input.account));
        }
    });
    let data = Resource::new(move || changed.get(), |_| admin_overview());
    let page_error = move || {
        actions
            .revoke
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| actions.toggle.value().get().and_then(Result::err))
    };

    view! {
        <Title text="Service accounts" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                        Ok(overview) => {
                            let max_days = overview.max_token_days;
                            let settings_view = overview.clone();
                            view! {
                                {move || page_error().map(|e| view! { <ErrorNote error=e /> })}
                                <section class="panel" aria-labelledby="accounts-title">
                                    <h1 id="accounts-title">"Service accounts"</h1>
                                    <p class="muted">
                                        "A service account is a user that never signs in: CI jobs and other systems act as it through the tokens issued here, with the roles it is given. Separation of duties holds for it as for a person: it never decides a request it made."
                                    </p>
                                    <NewAccountForm actions />
                                </section>
                                {overview
                                    .accounts
                                    .into_iter()
                                    .map(|a| view! { <AccountSection a actions max_days /> })
                                    .collect_view()}
                                <SettingsSection settings_view=settings_view actions />
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}

#[component]
fn SettingsSection(settings_view: AdminView, actions: Actions) -> impl IntoView {
    let view_data = settings_view;
    let settings = actions.settings;
    let errors = move || match settings.value().get() {
        Some(Ok(FormOutcome::Invalid(e))) => e,
        _ => SpecErrors::default(),
    };
    let error = Signal::derive(move || messages(&errors(), "max_token_days"));
    let other_error = move || settings.value().get().and_then(Result::err);
    let saved = move || matches!(settings.value().get(), Some(Ok(FormOutcome::Saved)));
    view! {
        <section class="panel" aria-labelledby="settings-title">
            <h2 id="settings-title">"Token lifetime"</h2>
            <ActionForm action=settings attr:class="form" attr:novalidate=true>
                {move || other_error().map(|e| view! { <ErrorNote error=e /> })}
                <FormField id="max_token_days".to_string() label="Longest a new token may live (days)" error
                    hint=format!("1 to {} days; 90 unless changed here. Tokens made earlier keep their expiry.", view_data.max_token_days_ceiling)>
                    <input
                        id="max_token_days"
                        name="max_token_days"
                        type="number"
                        min="1"
                        max=view_data.max_token_days_ceiling.to_string()
                        required
                        value=view_data.max_token_days.to_string()
                        aria-describedby="max_token_days-hint max_token_days-error"
                        aria-invalid=move || error.get().is_some().to_string()
                    />
                </FormField>
                <p class="muted" data-testid="settings-changed">
                    {match view_data.settings_changed {
                        Some((by, at)) => view! { "Last changed by " {by} ", " <When stamp=at /> "." }.into_any(),
                        None => "Never changed: the default applies.".into_any(),
                    }}
                </p>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || settings.pending().get()>"Save"</button>
                    <span role="status" data-testid="settings-saved">{move || saved().then_some("Saved.")}</span>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn NewAccountForm(actions: Actions) -> impl IntoView {
    let create = actions.create;
    let errors = move || match create.value().get() {
        Some(Ok(FormOutcome::Invalid(e))) => e,
        _ => SpecErrors::default(),
    };
    let error_for = move |field: &'static str| Signal::derive(move || messages(&errors(), field));
    let other_error = move || create.value().get().and_then(Result::err);
    view! {
        <ActionForm action=create attr:class="form" attr:novalidate=true attr:aria-labelledby="new-account-title">
            <h2 id="new-account-title">"New service account"</h2>
            {move || other_error().map(|e| view! { <ErrorNote error=e /> })}
            <FormField id="account-name".to_string() label="Name" error=error_for("name")
                hint="What acts as it, e.g. \"CI pipeline\". Unique among service accounts.">
                <input
                    id="account-name"
                    name="name"
                    type="text"
                    maxlength="64"
                    required
                    autocomplete="off"
                    aria-describedby="account-name-hint account-name-error"
                    aria-invalid=move || error_for("name").get().is_some().to_string()
                />
            </FormField>
            <fieldset
                class="field choices"
                class:has-error=move || error_for("roles").get().is_some()
                aria-describedby="account-roles-error"
            >
                <legend>"Roles"</legend>
                {Role::ALL
                    .into_iter()
                    .map(|r| {
                        view! {
                            <label class="choice">
                                <input type="checkbox" name="roles[]" value=r.as_str() />
                                " " {r.as_str()}
                            </label>
                        }
                    })
                    .collect_view()}
                <p class="field-error" id="account-roles-error" role="alert" data-testid="account-roles-error">
                    {move || error_for("roles").get()}
                </p>
            </fieldset>
            <div class="actions">
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    "Create service account"
                </button>
            </div>
        </ActionForm>
    }
}

#[component]
fn AccountSection(a: ServiceAccountView, actions: Actions, max_days: u32) -> impl IntoView {
    let id = a.id;
    let title = format!("account-{id}-title");
    let title_ref = title.clone();
    let issue = actions.issue;
    let mine = move || actions.issuing_for.get() == Some(id);
    let shown = Signal::derive(move || match issue.value().get() {
        Some(Ok(IssueOutcome::Issued { token, secret })) if token.user_id == id => {
            Some((token.name, secret))
        }
        _ => None,
    });
    let errors = Signal::derive(move || match issue.value().get() {
        Some(Ok(IssueOutcome::Invalid(e))) if mine() => e,
        _ => SpecErrors::default(),
    });
    let other_error = move || match issue.value().get() {
        Some(Err(e)) if mine() => Some(e),
        _ => None,
    };
    let roles = a
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let disabled = a.disabled.is_some();
    let revoke = actions.revoke;
    let revoke_cell = move |t: &TokenView| revoke_button(revoke, id, t);
    let name = a.name;
    let toggle_label = format!("{} {name}", if disabled { "Enable" } else { "Disable" });
    let issue_title = format!("Issue a token for {name}");
    let data_name = name.clone();
    let tokens = token_table(a.tokens, "account-tokens", revoke_cell);
    let issue_form = (!disabled).then(|| {
        view! {
            <ActionForm action=issue attr:class="form" attr:novalidate=true>
                <h3>{issue_title}</h3>
                {move || other_error().map(|e| view! { <ErrorNote error=e /> })}
                <input type="hidden" name="account" value=id.to_string() />
                <TokenFields id_prefix=format!("account-{id}-token") errors allowed=a.allowed_scopes max_days />
                <div class="actions">
                    <SecretSubmit label="Issue token" pending_label="Issuing…" pending=issue.pending() />
                </div>
            </ActionForm>
        }
    });
    view! {
        <section class="panel" aria-labelledby=title_ref data-testid="service-account" data-name=data_name>
            <div class="panel-head">
                <h2 id=title>{name}</h2>
                {a.disabled.map(|at| view! {
                    <span class="badge badge-token-revoked" data-testid="account-disabled">"disabled"</span>
                    <span class="muted">"since " <When stamp=at /></span>
                })}
            </div>
            <dl class="facts">
                <dt>"Roles"</dt>
                <dd>{roles}</dd>
                <dt>"Made by"</dt>
                <dd>{a.created_by} ", " <When stamp=a.created /></dd>
            </dl>
            <ActionForm action=actions.toggle attr:class="inline">
                <input type="hidden" name="account" value=id.to_string() />
                <input type="hidden" name="disabled" value={(!disabled).to_string()} />
                <button type="submit" class={if disabled { "secondary" } else { "danger" }}>
                    {toggle_label}
                </button>
            </ActionForm>
            <h3>"Tokens"</h3>
            <ShownSecret shown />
            {tokens}
            {issue_form}
        </section>
    }
}

/// The revoke button of a service account's live token.
fn revoke_button(
    revoke: ServerAction<RevokeServiceToken>,
    account: Uuid,
    t: &TokenView,
) -> AnyView {
    if t.revoked.is_some() || t.expired {
        return ().into_any();
    }
    let (id, label) = (t.id.to_string(), format!("Revoke {}", t.name));
    view! {
        <ActionForm action=revoke attr:class="inline">
            <input type="hidden" name="account" value=account.to_string() />
            <input type="hidden" name="token" value=id />
            <button type="submit" class="danger small" aria-label=label>
                "Revoke"
            </button>
        </ActionForm>
    }
    .into_any()
}
