//! Berth's user interface: the HTML shell, routes, pages and server functions.

pub mod api;
pub mod components;
pub mod error;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    lazy_route, path, Lazy, LazyRoute, SsrMode,
};

use components::layout::Layout;
use pages::{
    audit::AuditPage,
    change::{ChangePage, DecommissionPage},
    environment::EnvironmentPage,
    environments::EnvironmentsPage,
    login::LoginPage,
    new_request::NewRequestPage,
    not_found::NotFound,
    people::PeoplePage,
    plan::PlanPage,
    request::RequestPage,
    service_accounts::ServiceAccountsPage,
    tokens::TokensPage,
    webhooks::{WebhookPage, WebhooksPage},
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
    view! {
        <Stylesheet id="leptos" href="/pkg/berth.css" />
        <Title formatter=|t: String| if t.is_empty() { "Berth".to_string() } else { format!("{t} · Berth") } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("/") ssr=SsrMode::Async view=EnvironmentsPage />
                    <Route path=path!("/login") ssr=SsrMode::Async view={Lazy::<LoginRoute>::new()} />
                    <Route path=path!("/requests/new") ssr=SsrMode::Async view={Lazy::<NewRequestRoute>::new()} />
                    <Route path=path!("/requests/:id") ssr=SsrMode::Async view={Lazy::<RequestRoute>::new()} />
                    <Route path=path!("/plans/:id") ssr=SsrMode::Async view={Lazy::<PlanRoute>::new()} />
                    <Route path=path!("/environments/:id") ssr=SsrMode::Async view={Lazy::<EnvironmentRoute>::new()} />
                    <Route path=path!("/environments/:id/change") ssr=SsrMode::Async view={Lazy::<ChangeRoute>::new()} />
                    <Route path=path!("/environments/:id/decommission") ssr=SsrMode::Async view={Lazy::<DecommissionRoute>::new()} />
                    <Route path=path!("/audit") ssr=SsrMode::Async view={Lazy::<AuditRoute>::new()} />
                    <Route path=path!("/admin/webhooks") ssr=SsrMode::Async view={Lazy::<WebhooksRoute>::new()} />
                    <Route path=path!("/admin/webhooks/:id") ssr=SsrMode::Async view={Lazy::<WebhookRoute>::new()} />
                    <Route path=path!("/tokens") ssr=SsrMode::Async view={Lazy::<TokensRoute>::new()} />
                    <Route path=path!("/admin/service-accounts") ssr=SsrMode::Async view={Lazy::<ServiceAccountsRoute>::new()} />
                    <Route path=path!("/admin/people") ssr=SsrMode::Async view={Lazy::<PeopleRoute>::new()} />
                </Routes>
            </Layout>
        </Router>
    }
}

// Every page but the environment list (where people land) is a lazy route: in the browser its
// code is a separate WASM part (`tools/lib.sh` splits it off), fetched the first time the page
// is shown, so the WASM loaded first stays small (docs/benchmarks.md, 2026-12-02). The server
// renders them like any other route. Each page loads its own data, so `data()` has none.

/// Declares a unit struct that renders `$page` as a lazily loaded route.
macro_rules! lazy_page {
    ($route:ident => $page:ident) => {
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(LoginRoute => LoginPage);
lazy_page!(NewRequestRoute => NewRequestPage);
lazy_page!(RequestRoute => RequestPage);
lazy_page!(PlanRoute => PlanPage);
lazy_page!(EnvironmentRoute => EnvironmentPage);
lazy_page!(AuditRoute => AuditPage);
lazy_page!(ChangeRoute => ChangePage);
lazy_page!(DecommissionRoute => DecommissionPage);
lazy_page!(WebhooksRoute => WebhooksPage);
lazy_page!(WebhookRoute => WebhookPage);
lazy_page!(TokensRoute => TokensPage);
lazy_page!(ServiceAccountsRoute => ServiceAccountsPage);
lazy_page!(PeopleRoute => PeoplePage);

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
