//! Small display helpers.

use berth_domain::RequestStatus;
use leptos::prelude::*;

use crate::{api::Stamp, error::AppError};

/// A coloured badge for a request or environment status.
#[component]
pub fn StatusBadge(status: RequestStatus) -> impl IntoView {
    view! { <span class=format!("badge badge-{}", status.as_str())>{status.as_str()}</span> }
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
