//! Hydrates the server-rendered page in the browser.

use leptos::{mount::hydrate_from_async, prelude::document};

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Asynchronous hydration, as `leptos::mount::hydrate_lazy` does it: a lazy route's code
    // (see app/src/lib.rs) is fetched before its part of the page is hydrated.
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = document().body() else {
            return;
        };
        hydrate_from_async(body.clone(), app::App).await.forget();
        // Marks the page once the WASM has taken over, so tests (and people) know buttons work.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
