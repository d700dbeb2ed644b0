//! Berth's user interface: the HTML shell, routes, pages and server functions.

pub mod api;
pub mod components;
pub mod error;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

use components::layout::Layout;
use pages::{
    environment::EnvironmentPage, environments::EnvironmentsPage, login::LoginPage,
    new_request::NewRequestPage, not_found::NotFound, request::RequestPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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
                    <Route path=path!("/") view=EnvironmentsPage />
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/requests/new") view=NewRequestPage />
                    <Route path=path!("/requests/:id") view=RequestPage />
                    <Route path=path!("/environments/:id") view=EnvironmentPage />
                </Routes>
            </Layout>
        </Router>
    }
}
