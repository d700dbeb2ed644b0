//! The people who sign in, for admins (`Action::Administer`): their roles as the identity
//! provider last gave them, and their open sessions, which an admin can end at once.

use berth_domain::Role;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

/// A person as the admins' page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonView {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub last_sign_in: Option<Stamp>,
    /// Sessions that still stand.
    pub open_sessions: i64,
}

/// Everyone who has signed in (service accounts are on their own page), by name.
#[server(endpoint = "people", output = super::codec::JsonOut)]
pub async fn people() -> Result<Vec<PersonView>, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::Administer).await?;
        Ok(berth_db::sign_ins::people(&s.pool)
            .await?
            .into_iter()
            .map(|p| PersonView {
                id: p.user.id,
                name: p.user.display_name,
                email: p.user.email,
                roles: p.user.roles,
                last_sign_in: p.last_sign_in.map(Stamp::from),
                open_sessions: p.open_sessions,
            })
            .collect())
    })
    .await
}

/// Ends every session of `person` now: each of their browsers is signed out at its next call
/// (live-progress streams within a minute). Their API tokens are not touched (revoke those on
/// the tokens pages). Returns how many sessions ended; recorded in the sign-in audit trail.
#[server(endpoint = "end_sessions", output = super::codec::JsonOut)]
pub async fn end_sessions(person: Uuid) -> Result<u64, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        let Some(user) = berth_db::users::get(&s.pool, person).await? else {
            return Err(AppError::NotFound);
        };
        let by = berth_db::sign_ins::EndedBy {
            id: actor.user_id,
            name: &actor.name,
            source_addr: addr.as_deref(),
        };
        let ended = berth_db::sign_ins::end_all_of(&s.pool, user.id, by).await?;
        tracing::info!(person = %user.id, by = %actor.user_id, ended, "sessions ended by an admin");
        Ok(ended)
    })
    .await
}
