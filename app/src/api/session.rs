//! Who is signed in.

use berth_domain::Role;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

/// The page frame decodes this on every page: the id is text (only ever shown or linked), so the
/// WASM loaded first carries no UUID parser (docs/benchmarks.md, 2026-12-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
}

/// A demo account offered by the development sign-in page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoUser {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
}

/// The signed-in user, or `None`.
#[server(endpoint = "whoami", output = super::codec::JsonOut)]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    super::guard::respond(async {
        Ok(super::guard::current_user().await?.map(|u| Me {
            id: u.id.to_string(),
            name: u.display_name,
            roles: u.roles,
        }))
    })
    .await
}

/// How people can sign in on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInChoices {
    /// Single sign-on through the company's identity provider.
    pub sso: bool,
    /// Demo accounts of the development sign-in (empty when it is off).
    pub demo_users: Vec<DemoUser>,
    /// Why this browser's last sign-in ended, when someone else ended it (said once).
    pub ended: Option<String>,
}

#[server(endpoint = "sign_in_options", output = super::codec::JsonOut)]
pub async fn sign_in_options() -> Result<SignInChoices, AppError> {
    super::guard::respond(async {
        let services = super::guard::services()?;
        let demo_users = if services.dev_login {
            berth_db::users::list_by_issuer(&services.pool, DEMO_ISSUER)
                .await?
                .into_iter()
                .map(|u| DemoUser {
                    id: u.id,
                    name: u.display_name,
                    email: u.email,
                    roles: u.roles,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(SignInChoices {
            sso: services.sso,
            demo_users,
            ended: ended_notice().await,
        })
    })
    .await
}

/// Why the last sign-in ended, taken from the session (so it is said once).
#[cfg(feature = "ssr")]
async fn ended_notice() -> Option<String> {
    use berth_db::sign_ins::EndReason;
    let session: tower_sessions::Session = leptos_axum::extract().await.ok()?;
    let raw: String = session
        .remove(super::guard::SESSION_ENDED_KEY)
        .await
        .ok()
        .flatten()?;
    let notice = match EndReason::parse(&raw).ok()? {
        EndReason::EndedByAdmin => "An administrator ended your session.",
        EndReason::Expired => "Your session reached its time limit.",
        EndReason::RefusedByProvider => {
            "Your identity provider no longer confirms your sign-in (your account or groups may have changed)."
        }
        EndReason::ProviderUnreachable => {
            "Berth could not confirm your sign-in with your identity provider for too long."
        }
        EndReason::SignedOut => return None,
    };
    Some(format!("{notice} Sign in again to continue."))
}

/// The issuer recorded for the seeded demo accounts.
pub const DEMO_ISSUER: &str = "berth-demo";
