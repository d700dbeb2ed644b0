//! Who is signed in.

use berth_domain::Role;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
}

impl Me {
    pub fn actor(&self) -> berth_domain::Actor {
        berth_domain::Actor {
            user_id: self.id,
            name: self.name.clone(),
            roles: self.roles.clone(),
        }
    }
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
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    super::guard::respond(async {
        Ok(super::guard::current_user().await?.map(|u| Me {
            id: u.id,
            name: u.display_name,
            roles: u.roles,
        }))
    })
    .await
}

/// The demo accounts, when the development sign-in is enabled (404 otherwise).
#[server(endpoint = "demo_users")]
pub async fn demo_users() -> Result<Vec<DemoUser>, AppError> {
    super::guard::respond(async {
        let services = super::guard::services()?;
        if !services.dev_login {
            return Err(AppError::NotFound);
        }
        let users = berth_db::users::list_by_issuer(&services.pool, DEMO_ISSUER).await?;
        Ok(users
            .into_iter()
            .map(|u| DemoUser {
                id: u.id,
                name: u.display_name,
                email: u.email,
                roles: u.roles,
            })
            .collect())
    })
    .await
}

/// The issuer recorded for the seeded demo accounts.
pub const DEMO_ISSUER: &str = "berth-demo";
