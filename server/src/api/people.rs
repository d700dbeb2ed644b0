//! People over the API (admins, `operate` scope): who signs in, and ending every session of a
//! person — the same core as the admins' People page.

use axum::{extract::Path, Json};
use berth_domain::{Action, Role};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{caller::Caller, parse_id, problem::Problem};

/// A person who has signed in (service accounts are not listed).
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    /// As the identity provider last gave them.
    pub roles: Vec<Role>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sign_in: Option<OffsetDateTime>,
    /// Sessions that still stand.
    pub open_sessions: i64,
}

/// What ending a person's sessions did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// How many sessions ended (their browsers are signed out at their next call).
    pub ended: u64,
}

/// Everyone who has signed in, by name, with their open sessions.
#[utoipa::path(
    get,
    operation_id = "listPeople",
    path = "/people",
    responses((status = 200, body = Vec<Person>)),
    security(("bearer" = ["operate"])),
    tag = "people"
)]
pub async fn list(caller: Caller) -> Result<Json<Vec<Person>>, Problem> {
    caller.allow(Action::Administer).await?;
    let people = berth_db::sign_ins::people(&caller.services.pool).await?;
    Ok(Json(
        people
            .into_iter()
            .map(|p| Person {
                id: p.user.id,
                name: p.user.display_name,
                email: p.user.email,
                roles: p.user.roles,
                last_sign_in: p.last_sign_in,
                open_sessions: p.open_sessions,
            })
            .collect(),
    ))
}

/// Ends every session of a person now (a lost laptop, a person leaving). Their API tokens are
/// not touched. Recorded in the sign-in audit trail.
#[utoipa::path(
    post,
    operation_id = "endSessions",
    path = "/people/{id}/sessions/end",
    params(("id" = Uuid, Path, description = "The person's id")),
    responses(
        (status = 200, body = SessionsEnded),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["operate"])),
    tag = "people"
)]
pub async fn end_sessions(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, Problem> {
    let admin = caller.allow(Action::Administer).await?;
    let id = parse_id(&id, "person")?;
    let pool = &caller.services.pool;
    let person = berth_db::users::get(pool, id)
        .await?
        .ok_or_else(Problem::not_found)?;
    let addr = caller.addr();
    let by = berth_db::sign_ins::EndedBy {
        id: admin.user_id,
        name: &admin.name,
        source_addr: addr.as_deref(),
    };
    let ended = berth_db::sign_ins::end_all_of(pool, person.id, by).await?;
    tracing::info!(person = %person.id, by = %admin.user_id, ended, "sessions ended over the API");
    Ok(Json(SessionsEnded { ended }))
}
