//! Berth's user interface: the HTML shell, routes, pages and server functions.

pub mod api;
pub mod components;
pub mod error;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use components::layout::Layout;
use pages::{
    audit::AuditPage, environment::EnvironmentPage, environments::EnvironmentsPage,
    login::LoginPage, new_request::NewRequestPage, not_found::NotFound, plan::PlanPage,
    request::RequestPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="/favicon.ico" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                // Pages are rendered whole before sending (SsrMode::Async) so they read
                // without JavaScript.
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Marks the page once the WASM has taken over, so tests (and people) know buttons work.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/berth.css" />
        <Title formatter=|t: String| if t.is_empty() { "Berth".to_string() } else { format!("{t} · Berth") } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("/") ssr=SsrMode::Async view=EnvironmentsPage />
                    <Route path=path!("/login") ssr=SsrMode::Async view=LoginPage />
                    <Route path=path!("/requests/new") ssr=SsrMode::Async view=NewRequestPage />
                    <Route path=path!("/requests/:id") ssr=SsrMode::Async view=RequestPage />
                    <Route path=path!("/plans/:id") ssr=SsrMode::Async view=PlanPage />
                    <Route path=path!("/environments/:id") ssr=SsrMode::Async view=EnvironmentPage />
                    <Route path=path!("/audit") ssr=SsrMode::Async view=AuditPage />
                </Routes>
            </Layout>
        </Router>
    }
}

/// Sets the page's Content-Security-Policy: scripts only from Berth with this response's nonce
/// (the hydration script is inline), WASM compilation allowed, nothing framed, no plugins.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use http::{header::CONTENT_SECURITY_POLICY, HeaderValue};
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    // `cargo leptos watch` live-reloads over a websocket on the reload port.
    let reload = std::env::var("LEPTOS_WATCH")
        .ok()
        .and_then(|_| std::env::var("LEPTOS_RELOAD_PORT").ok())
        .map(|port| format!(" ws://127.0.0.1:{port}"))
        .unwrap_or_default();
    // Signing out redirects to the identity provider; Chrome applies form-action to that.
    let idp = use_context::<api::guard::Services>()
        .and_then(|s| s.idp_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; \
         frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'{idp}"
    );
    if let (Some(response), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(&policy),
    ) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}
