//! Errors of `/api/v1` as `application/problem+json` (RFC 9457), with each refused field named.

use app::error::AppError;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer. `type` is `about:blank` (the status says what happened), `title` the
/// status's phrase, `detail` a sentence safe to show, `errors` the refused fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Seconds for `Retry-After` (a 429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// One refused input field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 401 for a missing, malformed, unknown, expired or revoked token (which of these is not
    /// said, so a token cannot be probed).
    pub fn unauthenticated() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Send a valid API token: Authorization: Bearer berth_pat_… (see docs/api.md).",
        )
    }

    /// 422: one refused field (or parameter), named.
    pub fn invalid_field(field: &str, message: &str) -> Self {
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message);
        p.errors.push(FieldProblem {
            field: field.to_owned(),
            message: message.to_owned(),
        });
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found() -> Self {
        AppError::NotFound.into()
    }

    /// 429: the token called faster than its rate; `Retry-After` says when it may again.
    pub fn too_many(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("This token sent too many requests; try again in {seconds} s."),
        );
        p.retry_after = Some(seconds);
        p
    }
}

/// A refusal of query parameters (422), each refused one named in `errors`. `check` runs their
/// parsers on some of them (given as name and value). Each given parameter is checked alone, so
/// each refused one gets its own message; when each passes alone but not together (`from` after
/// `to`, two cursors), those whose absence lets the rest pass are named with the refusal's
/// message (every given one when no single one is the cause).
pub fn refused_parameters(
    err: AppError,
    given: &[(&'static str, &str)],
    check: impl Fn(&[(&'static str, &str)]) -> Result<(), AppError>,
) -> Problem {
    let mut p = Problem::from(err);
    if p.status != StatusCode::UNPROCESSABLE_ENTITY.as_u16() || !p.errors.is_empty() {
        return p;
    }
    let given: Vec<(&'static str, &str)> = given
        .iter()
        .copied()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let named = |field: &str, message: String| FieldProblem {
        field: field.to_owned(),
        message,
    };
    p.errors = given
        .iter()
        .filter_map(|&(f, v)| check(&[(f, v)]).err().map(|e| named(f, e.to_string())))
        .collect();
    if p.errors.is_empty() {
        let without = |f: &str| -> Vec<(&'static str, &str)> {
            given.iter().copied().filter(|(g, _)| *g != f).collect()
        };
        let mut causes: Vec<&str> = given
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| check(&without(f)).is_ok())
            .collect();
        if causes.is_empty() {
            causes = given.iter().map(|(f, _)| *f).collect();
        }
        p.errors = causes
            .into_iter()
            .map(|f| named(f, p.detail.clone()))
            .collect();
    }
    p
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut p = Problem::new(status, e.to_string());
        if let AppError::Fields(errors) = e {
            p.errors = errors
                .0
                .into_iter()
                .map(|f| FieldProblem {
                    field: f.field,
                    message: f.message,
                })
                .collect();
        }
        p
    }
}

/// Storage failures are logged by `AppError`'s conversion; the caller gets its safe text.
impl From<berth_db::DbError> for Problem {
    fn from(e: berth_db::DbError) -> Self {
        AppError::from(e).into()
    }
}

impl From<berth_runs::EngineError> for Problem {
    fn from(e: berth_runs::EngineError) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthenticated = status == StatusCode::UNAUTHORIZED;
        let retry_after = self.retry_after;
        let mut res = (status, Json(self)).into_response();
        let h = res.headers_mut();
        if let Some(seconds) = retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthenticated {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"berth\""),
            );
        }
        res
    }
}

/// `Query<T>` whose refusal (a parameter that does not parse) is a 400 problem naming it.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}
