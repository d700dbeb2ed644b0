//! One rule for the pages' server functions (`POST /api/{fn}`, routed by leptos_axum): a call
//! whose arguments do not parse is refused with 400 only once the caller is known.
//! Argument decoding runs before the function body (and so before its policy check), so an
//! anonymous caller would otherwise learn the argument shapes of functions it may not call.

use app::{api::guard::Services, error::AppError};
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::server_fn::error::{FromServerFnError, SERVER_FN_ERROR_HEADER};
use tower_sessions::Session;

/// Middleware: a server function's 400 (its arguments did not parse) becomes 401 when nobody
/// is signed in. Everything else passes untouched.
pub async fn identity_before_arguments(
    State(services): State<Services>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    let refused_arguments = res.status() == StatusCode::BAD_REQUEST
        && res.headers().contains_key(SERVER_FN_ERROR_HEADER);
    if !refused_arguments {
        return res;
    }
    match app::api::guard::user_in_session(&services, &session).await {
        Ok(Some(_)) => res,
        Ok(None) => refusal(&res, AppError::Unauthorized("Sign in first.".into())),
        Err(e) => refusal(&res, e),
    }
}

/// `error` in place of `res`'s, encoded as every server-function error is.
fn refusal(res: &Response, error: AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, error.ser()).into_response();
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(path) = res.headers().get(SERVER_FN_ERROR_HEADER) {
        headers.insert(SERVER_FN_ERROR_HEADER, path.clone());
    }
    out
}
