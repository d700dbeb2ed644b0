//! Small display helpers.

use berth_domain::{EnvironmentStatus, RequestStatus};
use leptos::prelude::*;

use crate::{api::Stamp, error::AppError};

/// A request's or an environment's status, by its stored name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusName(&'static str);

impl From<RequestStatus> for StatusName {
    fn from(s: RequestStatus) -> Self {
        Self(s.as_str())
    }
}

impl From<EnvironmentStatus> for StatusName {
    fn from(s: EnvironmentStatus) -> Self {
        Self(s.as_str())
    }
}

/// A coloured badge for a request or environment status.
#[component]
pub fn StatusBadge(#[prop(into)] status: StatusName) -> impl IntoView {
    view! { <span class=format!("badge badge-{}", status.0)>{status.0}</span> }
}

/// The status choice of a list's filter form (`status`, empty: any), as the environment list and
/// the auditors' view offer it; `status` is the value in the address.
#[component]
pub fn StatusFilter(status: Memo<String>) -> impl IntoView {
    view! {
        <label>
            "Status "
            <select name="status">
                <option value="" selected=move || status.get().is_empty()>
                    "Any status"
                </option>
                {EnvironmentStatus::ALL
                    .into_iter()
                    .map(|s| {
                        view! {
                            <option value=s.as_str() selected=move || status.get() == s.as_str()>
                                {s.as_str()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// A `<time>` element showing a stamp.
#[component]
pub fn When(stamp: Stamp) -> impl IntoView {
    view! { <time datetime=stamp.iso>{stamp.display}</time> }
}

/// An error box. A 401 shows no box: whoever is not signed in is sent to sign in and then back
/// to this page (see [`SignInRedirect`]), from every page that shows its errors here.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    if matches!(error, AppError::Unauthorized(_)) {
        return view! { <SignInRedirect /> }.into_any();
    }
    view! {
        <div class="alert alert-error" role="alert">
            <p>{error.to_string()}</p>
        </div>
    }
    .into_any()
}

/// Sends a visitor who is not signed in to sign in, to come back to the page they asked for:
/// on the server the page's response becomes a 303 to `/auth/login?return_to=…` (so a browser
/// never sees the page); in the browser (a link followed after hydration, or a session that
/// ended meanwhile) the location is replaced with the same address. The server checks
/// `return_to` again (`server/src/routes/auth.rs`): only a path on this site is followed.
#[component]
pub fn SignInRedirect() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let here = {
        let path = location.pathname.get_untracked();
        let search = location.search.get_untracked();
        if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        }
    };
    let href = sign_in_href(&here);
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(value) = http::HeaderValue::from_str(&href) {
            response.set_status(http::StatusCode::SEE_OTHER);
            response.insert_header(http::header::LOCATION, value);
        }
    }
    #[cfg(feature = "hydrate")]
    {
        let href = href.clone();
        // After rendering, and replacing the history entry: "back" does not come here again.
        Effect::new(move |_| {
            let _ = window().location().replace(&href);
        });
    }
    view! {
        <p class="notice" role="status" data-testid="sign-in-redirect">
            "Sign in to see this page. " <a href=href rel="external">"Sign in"</a>
        </p>
    }
}

/// The sign-in address that comes back to `path` (a local path with its query) afterwards.
pub fn sign_in_href(path: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    format!(
        "/auth/login?return_to={}",
        utf8_percent_encode(path, NON_ALPHANUMERIC)
    )
}

#[cfg(test)]
mod tests {
    use super::sign_in_href;

    #[test]
    fn the_sign_in_address_carries_the_page_encoded() {
        assert_eq!(sign_in_href("/"), "/auth/login?return_to=%2F");
        assert_eq!(
            sign_in_href("/audit?status=ready&q=a b"),
            "/auth/login?return_to=%2Faudit%3Fstatus%3Dready%26q%3Da%20b"
        );
    }
}
