//! The admins' list of people who sign in: roles as the identity provider last gave them, when
//! they last signed in, their open sessions, and a button that ends them all (a lost laptop, a
//! person leaving). Checked on the server (`Action::Administer`).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::people::{people, EndSessions, PersonView},
    components::status::ErrorNote,
};

#[component]
pub fn PeoplePage() -> impl IntoView {
    let end = ServerAction::<EndSessions>::new();
    let data = Resource::new(move || end.version().get(), |_| people());
    let outcome = move || match end.value().get() {
        Some(Ok(n)) => Some(
            view! {
                <p class="notice" role="status" data-testid="sessions-ended">
                    {format!("{n} session{} ended.", if n == 1 { "" } else { "s" })}
                </p>
            }
            .into_any(),
        ),
        Some(Err(e)) => Some(view! { <ErrorNote error=e /> }.into_any()),
        None => None,
    };

    view! {
        <Title text="People" />
        <section class="panel" aria-labelledby="people-title">
            <h1 id="people-title">"People"</h1>
            <p class="muted">
                "Everyone who has signed in. Roles follow the identity provider: they are asked again every few minutes while a session is used, so a group removed there ends the role here. Ending a person's sessions signs out each of their browsers at its next call; their API tokens stay until revoked."
            </p>
            {outcome}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || data.get().map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e /> }.into_any(),
                    Ok(list) => people_table(list, end),
                })}
            </Transition>
        </section>
    }
}

fn people_table(list: Vec<PersonView>, end: ServerAction<EndSessions>) -> AnyView {
    if list.is_empty() {
        return view! { <p class="empty">"Nobody has signed in yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="list people" data-testid="people">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Email"</th>
                        <th scope="col">"Roles"</th>
                        <th scope="col">"Last sign-in"</th>
                        <th scope="col">"Open sessions"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {list.into_iter().map(|p| person_row(p, end)).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

fn person_row(p: PersonView, end: ServerAction<EndSessions>) -> impl IntoView {
    let roles = if p.roles.is_empty() {
        "no role".to_owned()
    } else {
        p.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let last = p.last_sign_in.map(|s| {
        view! { <time datetime=s.iso>{s.display}</time> }
    });
    let button = (p.open_sessions > 0).then(|| {
        let label = format!("End sessions of {}", p.name);
        view! {
            <ActionForm action=end attr:class="inline">
                <input type="hidden" name="person" value=p.id.to_string() />
                <button type="submit" class="danger small" aria-label=label>
                    "End sessions"
                </button>
            </ActionForm>
        }
    });
    view! {
        <tr data-person=p.id.to_string()>
            <td>{p.name}</td>
            <td>{p.email}</td>
            <td>{roles}</td>
            <td>{last}</td>
            <td data-testid="open-sessions">{p.open_sessions}</td>
            <td>{button}</td>
        </tr>
    }
}
