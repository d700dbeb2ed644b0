//! API tokens: a member's own personal access tokens (list, make, revoke), and the parts the
//! admins' service-account page shares (the token form's fields, the list, the secret shown
//! once).

use berth_domain::{token::Scope, SpecErrors};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::tokens::{my_tokens, CreateToken, IssueOutcome, RevokeToken, TokenView},
    components::{
        forms::SecretSubmit,
        status::{ErrorNote, When},
    },
};

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    // The list is read again after a token is made or revoked; a refused form is not
    // re-rendered, so what was typed stays.
    let changed = RwSignal::new(0u32);
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(IssueOutcome::Issued { .. }))) {
            changed.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if matches!(revoke.value().get(), Some(Ok(()))) {
            changed.update(|n| *n += 1);
        }
    });
    let data = Resource::new(move || changed.get(), |_| my_tokens());
    let shown = Signal::derive(move || match create.value().get() {
        Some(Ok(IssueOutcome::Issued { token, secret })) => Some((token.name, secret)),
        _ => None,
    });
    let revoke_error = move || revoke.value().get().and_then(Result::err);

    view! {
        <Title text="API tokens" />
        <section class="panel">
            <h1>"API tokens"</h1>
            <p class="muted">
                "A personal access token lets a script or a CI job call Berth's API ("
                <code>"/api/v1"</code> ") as you, sent as "
                <code>"Authorization: Bearer …"</code>
                ". It never does more than your roles allow, and stops working when it expires, when you revoke it, or when you lose the role."
            </p>
            <ShownSecret shown />
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    data.get()
                        .map(|r| match r {
                            Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                            Ok(d) => {
                                let revoke_cell = move |t: &TokenView| revoke_button(revoke, t);
                                view! {
                                    <NewTokenForm create allowed=d.allowed_scopes max_days=d.max_days />
                                    <h2 id="tokens-title">"Your tokens"</h2>
                                    {move || revoke_error().map(|e| view! { <ErrorNote error=e /> })}
                                    {token_table(d.tokens, "tokens", revoke_cell)}
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn NewTokenForm(
    create: ServerAction<CreateToken>,
    allowed: Vec<Scope>,
    max_days: u32,
) -> impl IntoView {
    let errors = Signal::derive(move || match create.value().get() {
        Some(Ok(IssueOutcome::Invalid(e))) => e,
        _ => SpecErrors::default(),
    });
    let other_error = move || match create.value().get() {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    view! {
        <ActionForm action=create attr:class="form" attr:novalidate=true attr:aria-labelledby="new-token-title">
            <h2 id="new-token-title">"Make a token"</h2>
            {move || other_error().map(|e| view! { <ErrorNote error=e /> })}
            <TokenFields id_prefix="token" errors allowed max_days />
            <div class="actions">
                <SecretSubmit label="Make token" pending_label="Making…" pending=create.pending() />
            </div>
        </ActionForm>
    }
}

/// The fields of a new token (name, days, scopes) with their errors; ids start `id_prefix`.
#[component]
pub(crate) fn TokenFields(
    #[prop(into)] id_prefix: String,
    errors: Signal<SpecErrors>,
    allowed: Vec<Scope>,
    max_days: u32,
) -> impl IntoView {
    let error_for =
        move |field: &'static str| Signal::derive(move || messages(&errors.get(), field));
    let days_default = 30.min(max_days).to_string();
    let [name_id, days_id, scopes_hint, scopes_error] =
        ["name", "days", "scopes-hint", "scopes-error"].map(|part| format!("{id_prefix}-{part}"));
    let scopes_described = format!("{scopes_hint} {scopes_error}");
    let name_described = format!("{name_id}-hint {name_id}-error");
    let days_described = format!("{days_id}-hint {days_id}-error");
    view! {
        <FormField id=name_id.clone() label="Name" error=error_for("name")
            hint="What it is for, e.g. \"CI deploys\" (1 to 64 characters).">
            <input
                id=name_id.clone()
                name="name"
                type="text"
                maxlength="64"
                required
                autocomplete="off"
                aria-describedby=name_described
                aria-invalid=move || error_for("name").get().is_some().to_string()
            />
        </FormField>
        <FormField id=days_id.clone() label="Expires after (days)" error=error_for("days")
            hint=format!("1 to {max_days} days; Berth's maximum for this company.")>
            <input
                id=days_id.clone()
                name="days"
                type="number"
                min="1"
                max=max_days.to_string()
                required
                value=days_default
                aria-describedby=days_described
                aria-invalid=move || error_for("days").get().is_some().to_string()
            />
        </FormField>
        <fieldset
            class="field choices"
            class:has-error=move || error_for("scopes").get().is_some()
            aria-describedby=scopes_described
        >
            <legend>"Scopes"</legend>
            {allowed
                .into_iter()
                .map(|s| {
                    view! {
                        <label class="choice">
                            <input type="checkbox" name="scopes[]" value=s.as_str() checked={s == Scope::Read} />
                            " " <strong>{s.as_str()}</strong> ": " {scope_help(s)}
                        </label>
                    }
                })
                .collect_view()}
            <p class="field-hint" id=scopes_hint>
                "Only the scopes the holder's roles allow are offered."
            </p>
            <p class="field-error" id=scopes_error.clone() role="alert" data-testid=scopes_error>
                {move || error_for("scopes").get()}
            </p>
        </fieldset>
    }
}

/// Every message about `field`, joined (a field may have more than one problem).
pub(crate) fn messages(errors: &SpecErrors, field: &str) -> Option<String> {
    let all: Vec<&str> = errors
        .0
        .iter()
        .filter(|e| e.field == field)
        .map(|e| e.message.as_str())
        .collect();
    (!all.is_empty()).then(|| all.join(" "))
}

/// What each scope allows, in a few words.
fn scope_help(s: Scope) -> &'static str {
    match s {
        Scope::Read => "read environments, requests and history",
        Scope::Request => "make, change and withdraw requests",
        Scope::Decide => "approve or reject other people's requests",
        Scope::Operate => "retry and cancel runs, refresh plans",
    }
}

/// A labelled field with its hint and its error right below it; `id` is the input's id.
#[component]
pub(crate) fn FormField(
    id: String,
    label: &'static str,
    #[prop(into)] hint: String,
    error: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            {children()}
            <p class="field-hint" id=format!("{id}-hint")>{hint}</p>
            <p class="field-error" id=format!("{id}-error") role="alert" data-testid=format!("{id}-error")>
                {move || error.get()}
            </p>
        </div>
    }
}

/// The secret of a token just made, `(token name, secret)`: shown this once, with a copy
/// button. The region is always there so screen readers announce what appears in it.
#[component]
pub(crate) fn ShownSecret(shown: Signal<Option<(String, String)>>) -> impl IntoView {
    view! {
        <div aria-live="polite">
            {move || {
                shown
                    .get()
                    .map(|(name, secret)| {
                        view! {
                            <div class="shown-secret" data-testid="new-token">
                                <h2>"Your new token: " {name}</h2>
                                <p>
                                    <strong>"Copy it now: you won't see this again."</strong>
                                    " Berth keeps only a hash of it. If you lose it, revoke it and make another."
                                </p>
                                <label for="token-secret">"Token"</label>
                                <div class="secret-row">
                                    <input
                                        id="token-secret"
                                        type="text"
                                        readonly
                                        value=secret.clone()
                                        autocomplete="off"
                                        spellcheck="false"
                                        data-testid="token-secret"
                                    />
                                    <CopyButton text=secret />
                                </div>
                            </div>
                        }
                    })
            }}
        </div>
    }
}

/// Copies `text` to the clipboard and says whether that worked.
#[component]
fn CopyButton(text: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    #[cfg(not(feature = "hydrate"))]
    let _ = (&text, copied);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let text = text.clone();
            leptos::task::spawn_local(async move {
                let promise = window().navigator().clipboard().write_text(&text);
                let ok = wasm_bindgen_futures::JsFuture::from(promise).await.is_ok();
                copied.set(Some(ok));
            });
        }
    };
    view! {
        <button type="button" class="secondary" on:click=copy>"Copy"</button>
        <span role="status" class="muted" data-testid="copy-status">
            {move || match copied.get() {
                Some(true) => "Copied.",
                Some(false) => "Could not copy; select the token and copy it yourself.",
                None => "",
            }}
        </span>
    }
}

/// The revoke button of one of the caller's own live tokens.
fn revoke_button(revoke: ServerAction<RevokeToken>, t: &TokenView) -> AnyView {
    if t.revoked.is_some() || t.expired {
        return ().into_any();
    }
    let (id, label) = (t.id.to_string(), format!("Revoke {}", t.name));
    view! {
        <ActionForm action=revoke attr:class="inline">
            <input type="hidden" name="id" value=id />
            <button type="submit" class="danger small" aria-label=label>
                "Revoke"
            </button>
        </ActionForm>
    }
    .into_any()
}

/// A list of tokens (never a secret): name, shown start, scopes, times, last use, state, and
/// the `action` cell (a revoke button where allowed).
pub(crate) fn token_table(
    tokens: Vec<TokenView>,
    testid: &'static str,
    action: impl Fn(&TokenView) -> AnyView,
) -> AnyView {
    if tokens.is_empty() {
        return view! { <p class="empty" data-testid=testid>"No tokens yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="list tokens" data-testid=testid>
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Token"</th>
                        <th scope="col">"Scopes"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"State"</th>
                    </tr>
                </thead>
                <tbody>
                    {tokens
                        .into_iter()
                        .map(|t| {
                            let cell = action(&t);
                            let state = if t.revoked.is_some() {
                                "revoked"
                            } else if t.expired {
                                "expired"
                            } else {
                                "active"
                            };
                            let scopes = t
                                .scopes
                                .iter()
                                .map(|s| view! { <span class="scope">{s.as_str()}</span> " " })
                                .collect_view();
                            view! {
                                <tr data-token=t.id.to_string() data-state=state>
                                    <td>{t.name.clone()}</td>
                                    <td><code>{format!("{}…", t.shown_prefix)}</code></td>
                                    <td>{scopes}</td>
                                    <td><When stamp=t.created.clone() /></td>
                                    <td><When stamp=t.expires.clone() /></td>
                                    <td>
                                        {match (t.last_used.clone(), t.last_used_addr.clone()) {
                                            (Some(at), addr) => {
                                                view! {
                                                    <When stamp=at />
                                                    {addr.map(|a| view! { <br /> <span class="muted">"from " {a}</span> })}
                                                }
                                                    .into_any()
                                            }
                                            (None, _) => view! { <span class="muted">"never"</span> }.into_any(),
                                        }}
                                    </td>
                                    <td>
                                        <span class=format!("badge badge-token-{state}") data-testid="token-state">{state}</span>
                                        {t.revoked.clone().map(|at| view! { " " <When stamp=at /> })}
                                        " "
                                        {cell}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
