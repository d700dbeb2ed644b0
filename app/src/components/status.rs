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

/// A `<time>` element showing a stamp.
#[component]
pub fn When(stamp: Stamp) -> impl IntoView {
    view! { <time datetime=stamp.iso>{stamp.display}</time> }
}

/// An error box; a 401 invites the person to sign in.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    let sign_in = matches!(error, AppError::Unauthorized(_));
    view! {
        <div class="alert alert-error" role="alert">
            <p>{error.to_string()}</p>
            {sign_in.then(|| view! { <p><a href="/login">"Sign in"</a></p> })}
        </div>
    }
}
