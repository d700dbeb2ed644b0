//! `/api/v1`: Berth for scripts, CI and the `berth` CLI. JSON in and out, bearer tokens only,
//! errors as `application/problem+json`. Handlers check the caller, parse input into domain
//! types and call the same core the pages call. The OpenAPI document is generated from these
//! handlers (`utoipa`) and served at `/api/v1/openapi.json`; `docs/api/openapi.json` is the
//! committed copy a test compares it with.

pub mod audit;
pub mod caller;
pub mod environments;
pub mod history;
pub mod idempotency;
pub mod limit;
pub mod people;
pub mod problem;
pub mod reference;
pub mod requests;
pub mod runs;
pub mod whoami;

use axum::{
    extract::{FromRequest, Request},
    http::{header, StatusCode},
    routing::{get, post},
    Router,
};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth API",
        version = "1",
        description = "Self-service production environments: request, approve and follow them. \
                       Authenticate with a personal access token or a service account's token: \
                       `Authorization: Bearer berth_pat_…`. Each token may make \
                       `BERTH_API_RATE_PER_MINUTE` calls a minute (after a burst); past that, \
                       429 with `Retry-After`."
    ),
    servers((url = "/api/v1")),
    paths(
        whoami::whoami,
        environments::list,
        environments::get,
        requests::create,
        requests::change,
        requests::decommission,
        requests::get,
        requests::plan,
        requests::refresh_plan,
        requests::approve,
        requests::reject,
        requests::withdraw,
        runs::latest,
        runs::get,
        runs::retry,
        runs::cancel,
        history::page,
        history::export,
        history::progress,
        audit::verify,
        people::list,
        people::end_sessions,
    ),
    components(schemas(problem::Problem, problem::FieldProblem, history::ExportFormat)),
    modifiers(&BearerAuth, &CommonResponses, &Links),
    tags(
        (name = "tokens", description = "Who a token speaks for"),
        (name = "environments", description = "Business units' environments"),
        (name = "requests", description = "Asking for, planning and deciding changes"),
        (name = "runs", description = "Provisioning runs"),
        (name = "history", description = "Timelines, exports and live progress"),
        (name = "people", description = "People who sign in, and their sessions (admins)"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme the paths' `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A Berth API token (`berth_pat_…` or `berth_sat_…`); its scopes \
                         (read, request, decide, operate) are listed per operation.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Completes every operation's answers: the problems any authenticated call may get (400 for a
/// parameter that does not parse, 401, 403, 429) and, with a body, 415 and 422; and every
/// answer without a description gets its status's phrase ("Not Found"), as OpenAPI requires.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let phrase = |code: &str| {
            code.parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Answer")
                .to_owned()
        };
        let problem = |code: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(phrase(code))
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let mut common = Vec::new();
                if op.security.is_some() {
                    common.extend(["400", "401", "403", "429"]);
                }
                if op.request_body.is_some() {
                    common.extend(["415", "422"]);
                }
                let responses = &mut op.responses.responses;
                for code in common {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(code));
                }
                for (code, response) in responses.iter_mut() {
                    if let RefOr::T(r) = response {
                        if r.description.is_empty() {
                            r.description = phrase(code);
                        }
                    }
                }
            }
        }
    }
}

/// Where an answer's ids lead (OpenAPI links): a client, or a tester such as schemathesis, can
/// follow a created request to its plan and decision, and a run to its retry.
struct Links;

/// (from operation, its answer, to operation, the `id` the target takes from the answer).
const LINKS: &[(&str, &str, &str, &str)] = &[
    ("createRequest", "201", "getRequest", "$response.body#/id"),
    ("createRequest", "201", "getPlan", "$response.body#/id"),
    ("createRequest", "201", "refreshPlan", "$response.body#/id"),
    (
        "createRequest",
        "201",
        "approveRequest",
        "$response.body#/id",
    ),
    (
        "createRequest",
        "201",
        "rejectRequest",
        "$response.body#/id",
    ),
    (
        "createRequest",
        "201",
        "withdrawRequest",
        "$response.body#/id",
    ),
    (
        "createRequest",
        "201",
        "getEnvironment",
        "$response.body#/environment_id",
    ),
    (
        "createRequest",
        "201",
        "getHistory",
        "$response.body#/environment_id",
    ),
    (
        "createRequest",
        "201",
        "exportHistory",
        "$response.body#/environment_id",
    ),
    (
        "createRequest",
        "201",
        "getLatestRun",
        "$response.body#/environment_id",
    ),
    (
        "createRequest",
        "201",
        "requestChange",
        "$response.body#/environment_id",
    ),
    (
        "createRequest",
        "201",
        "requestDecommission",
        "$response.body#/environment_id",
    ),
    (
        "approveRequest",
        "200",
        "getLatestRun",
        "$response.body#/environment_id",
    ),
    ("getLatestRun", "200", "getRun", "$response.body#/id"),
    ("getLatestRun", "200", "retryRun", "$response.body#/id"),
    ("getLatestRun", "200", "cancelRun", "$response.body#/id"),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{link::LinkBuilder, RefOr};
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post];
            for op in operations.into_iter().flatten() {
                let from = op.operation_id.clone().unwrap_or_default();
                for (_, status, to, id) in LINKS.iter().filter(|l| l.0 == from) {
                    if let Some(RefOr::T(answer)) = op.responses.responses.get_mut(*status) {
                        answer.links.insert(
                            to.to_string(),
                            RefOr::T(
                                LinkBuilder::new()
                                    .operation_id(*to)
                                    .parameter("id", *id)
                                    .build(),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The OpenAPI document, as served and as committed (pretty JSON, trailing newline).
pub fn openapi_json() -> &'static str {
    static JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut json = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        json.push('\n');
        json
    });
    &JSON
}

/// The routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/whoami", get(whoami::whoami))
        .route("/audit/verify", get(audit::verify))
        .route("/people", get(people::list))
        .route("/people/{id}/sessions/end", post(people::end_sessions))
        .route("/environments", get(environments::list))
        .route("/environments/{id}", get(environments::get))
        .route("/environments/{id}/changes", post(requests::change))
        .route(
            "/environments/{id}/decommission",
            post(requests::decommission),
        )
        .route("/environments/{id}/run", get(runs::latest))
        .route("/environments/{id}/history", get(history::page))
        .route("/environments/{id}/history/export", get(history::export))
        .route("/environments/{id}/progress", get(history::progress))
        .route("/requests", post(requests::create))
        .route("/requests/{id}", get(requests::get))
        .route(
            "/requests/{id}/plan",
            get(requests::plan).post(requests::refresh_plan),
        )
        .route("/requests/{id}/approve", post(requests::approve))
        .route("/requests/{id}/reject", post(requests::reject))
        .route("/requests/{id}/withdraw", post(requests::withdraw))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
}

/// Any other path under `/api/v1` (routed explicitly: the server functions' `/api/{*fn_name}`
/// would otherwise answer it).
pub async fn not_found() -> problem::Problem {
    problem::Problem::new(
        StatusCode::NOT_FOUND,
        "No such API endpoint (see /api/v1/openapi.json).",
    )
}

/// A path's id as a UUID, or 400 naming what it should identify.
pub fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, problem::Problem> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| problem::Problem::bad_request(format!("The {what} id is not a UUID.")))
}

/// `Json<T>` whose refusals are problems: 400 for malformed JSON, 415 without a JSON content
/// type, 422 for JSON of the wrong shape (naming the field).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = problem::Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, problem::Problem> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(|e| problem::Problem::new(e.status(), e.body_text()))
    }
}

/// Every ten minutes: forget rate-limit buckets that are full again and day-old idempotency
/// keys.
pub fn spawn_housekeeping(pool: berth_db::PgPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(e) = berth_db::rate_limits::forget_full(&pool).await {
                tracing::warn!(error = %e, "cannot forget full rate-limit buckets");
            }
            match berth_db::idempotency::purge(&pool).await {
                Ok(n) if n > 0 => tracing::debug!(keys = n, "forgot old idempotency keys"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
            }
        }
    });
}
