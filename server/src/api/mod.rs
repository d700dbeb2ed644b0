//! `/api/v1`: Berth for scripts, CI and the `berth` CLI. JSON in and out, bearer tokens only,
//! errors as `application/problem+json`. Handlers check the caller, parse input into domain
//! types and call the same core the pages call. The OpenAPI document is generated from these
//! handlers (`utoipa`) and served at `/api/v1/openapi.json`; `docs/api/openapi.json` is the
//! committed copy a test compares it with.

pub mod caller;
pub mod environments;
pub mod problem;
pub mod whoami;

use axum::{
    http::{header, StatusCode},
    routing::get,
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
        description = "Self-service production environments: list and read environments. \
                       Authenticate with a personal access token or a service account's token: \
                       `Authorization: Bearer berth_pat_…`."
    ),
    servers((url = "/api/v1")),
    paths(whoami::whoami, environments::list, environments::get),
    components(schemas(problem::Problem, problem::FieldProblem)),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "Who a token speaks for"),
        (name = "environments", description = "Business units' environments"),
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
        .route("/environments", get(environments::list))
        .route("/environments/{id}", get(environments::get))
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
