//! Form pieces shared by several pages.

use leptos::prelude::*;

/// The submit button of a form whose answer is a secret shown once, on this page (a token, a
/// webhook's signing secret). Without the page's script the form would post, make the secret and
/// send the browser back with nothing to show, so the button stays disabled until the page is
/// hydrated, and says why when scripts are off. Also disabled while `pending`.
#[component]
pub fn SecretSubmit(
    label: &'static str,
    pending_label: &'static str,
    #[prop(into)] pending: Signal<bool>,
) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| hydrated.set(true));
    view! {
        <button type="submit" class="primary" disabled=move || !hydrated.get() || pending.get()>
            {move || if pending.get() { pending_label } else { label }}
        </button>
        <noscript>
            <p class="muted">"This needs JavaScript: the secret is shown once, on this page."</p>
        </noscript>
    }
}
