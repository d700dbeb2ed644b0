//! `GET /api/v1/whoami`: whom the token speaks for, and what it may do.

use axum::Json;
use berth_domain::{token::Scope, Role};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{caller::Caller, problem::Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub user_id: Uuid,
    pub name: String,
    /// The holder's roles now (a token never does more than these allow).
    pub roles: Vec<Role>,
    pub token: TokenInfo,
}

/// The token used for this call (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// Says who the token speaks for. Any live token may ask.
#[utoipa::path(
    get,
    operation_id = "whoami",
    path = "/whoami",
    responses(
        (status = 200, body = WhoAmI),
    ),
    security(("bearer" = [])),
    tag = "tokens"
)]
pub async fn whoami(caller: Caller) -> Result<Json<WhoAmI>, Problem> {
    Ok(Json(WhoAmI {
        user_id: caller.actor.user_id,
        name: caller.actor.name,
        roles: caller.actor.roles,
        token: TokenInfo {
            id: caller.token.id,
            name: caller.token.name,
            scopes: caller.token.scopes,
            expires_at: caller.token.expires_at,
        },
    }))
}
