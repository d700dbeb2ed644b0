//! CSRF protection by Fetch Metadata (after rauthy): a state-changing request must come from
//! Berth's own pages. Leptos server functions add no CSRF protection of their own.

use axum::{
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;

/// Decides whether a request may change state.
pub fn allowed(
    method: &Method,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    public_origin: &str,
) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match sec_fetch_site {
        // Browsers that send Fetch Metadata: only our own pages may post.
        Some(site) => site == "same-origin",
        // Older browsers send Origin on POST; compare it with ours.
        None => match origin {
            Some(origin) => origin == public_origin,
            // No browser metadata at all: not a browser, so no ambient cookies to abuse.
            None => true,
        },
    }
}

/// Whether a download that carries the session (history and audit exports) may be answered:
/// followed from Berth's own pages, or opened directly (typed, bookmarked; `none`). A page on
/// another site linking or embedding it is refused, so it cannot make a signed-in auditor's
/// browser fetch (and record) exports. No Fetch Metadata at all: not a browser.
pub fn download_allowed(sec_fetch_site: Option<&str>) -> bool {
    matches!(sec_fetch_site, None | Some("same-origin") | Some("none"))
}

pub async fn layer(State(public_origin): State<Arc<str>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    // `/api/v1` authenticates by bearer token only and never reads the session cookie, so a
    // cross-site request carries nothing to abuse there.
    if req.uri().path().starts_with("/api/v1/")
        || allowed(req.method(), site, origin, &public_origin)
    {
        next.run(req).await
    } else {
        tracing::warn!(
            method = %req.method(),
            path = %req.uri().path(),
            sec_fetch_site = site,
            origin,
            "cross-site request refused"
        );
        (
            StatusCode::FORBIDDEN,
            "Cross-site request refused: submit the form from Berth's own pages.",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "https://berth.example.com";

    #[test]
    fn fetch_metadata_rules() {
        let post = Method::POST;
        assert!(allowed(&Method::GET, Some("cross-site"), None, ME));
        assert!(allowed(&post, Some("same-origin"), Some(ME), ME));
        assert!(!allowed(&post, Some("same-site"), Some(ME), ME));
        assert!(!allowed(&post, Some("cross-site"), None, ME));
        assert!(!allowed(&post, Some("none"), None, ME));
        assert!(allowed(&post, None, Some(ME), ME));
        assert!(!allowed(&post, None, Some("https://evil.example"), ME));
        assert!(!allowed(&post, None, Some("null"), ME));
        assert!(allowed(&post, None, None, ME));
        assert!(!allowed(&Method::DELETE, Some("cross-site"), None, ME));
    }

    #[test]
    fn downloads_come_from_our_pages_or_directly() {
        assert!(download_allowed(Some("same-origin")));
        assert!(download_allowed(Some("none")));
        assert!(download_allowed(None));
        assert!(!download_allowed(Some("same-site")));
        assert!(!download_allowed(Some("cross-site")));
    }
}
