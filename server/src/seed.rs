//! Demo accounts for local development and tests (`BERTH_SEED_DEMO=true`). Idempotent.
//!
//! The people come from `tools/test-idp/users.json`, the file the local identity provider
//! serves, embedded at compile time: the development sign-in and the provider offer the same
//! seven people with the same roles, and a change to the file reaches both.

use std::collections::BTreeMap;

use app::api::session::DEMO_ISSUER;
use berth_db::{users, PgPool};
use berth_domain::Role;
use serde::Deserialize;

/// The local provider's users file (two managers, two admins, an auditor, one person with
/// several roles and one with none).
const USERS_JSON: &str = include_str!("../../tools/test-idp/users.json");

/// Groups to roles exactly as the local setup maps them (`BERTH_OIDC_ROLE_MAP` in
/// `tools/lib.sh idp_berth_settings`), so a demo user has the same roles either way of signing in.
pub const DEMO_ROLE_MAP: &str = "berth-managers=manager;berth-admins=admin;berth-auditors=auditor";

/// One demo person: the login is the subject, the issuer is [`DEMO_ISSUER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub subject: String,
    pub name: String,
    pub email: String,
    pub roles: Vec<Role>,
}

#[derive(Deserialize)]
struct UsersFile {
    users: BTreeMap<String, FileUser>,
}

/// The fields of an entry the seed needs (the password is the provider's business).
#[derive(Deserialize)]
struct FileUser {
    name: String,
    email: String,
    groups: Vec<String>,
}

/// The demo people, by login. The file is part of the build, so a broken one fails the tests
/// (`the_demo_users_come_from_the_identity_providers_file`), not a start-up.
pub fn demo_people() -> Vec<DemoUser> {
    let file: UsersFile =
        serde_json::from_str(USERS_JSON).expect("tools/test-idp/users.json is valid");
    let role_map =
        berth_auth::settings::parse_role_map(DEMO_ROLE_MAP).expect("the demo role map is valid");
    file.users
        .into_iter()
        .map(|(subject, user)| {
            let mut roles: Vec<Role> = user
                .groups
                .iter()
                .filter_map(|g| role_map.get(g))
                .flatten()
                .copied()
                .collect();
            roles.sort();
            roles.dedup();
            DemoUser {
                subject,
                name: user.name,
                email: user.email,
                roles,
            }
        })
        .collect()
}

pub async fn demo_users(pool: &PgPool) -> Result<(), berth_db::DbError> {
    for person in demo_people() {
        users::upsert(
            pool,
            &users::Identity {
                issuer: DEMO_ISSUER,
                subject: &person.subject,
                display_name: &person.name,
                email: Some(&person.email),
                roles: &person.roles,
            },
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_users_come_from_the_identity_providers_file() {
        let people = demo_people();
        let roles = |s: &str| &people.iter().find(|p| p.subject == s).unwrap().roles;
        assert_eq!(people.len(), 7);
        assert_eq!(roles("maria"), &[Role::Manager]);
        assert_eq!(roles("ada"), &[Role::Admin]);
        assert_eq!(roles("audrey"), &[Role::Auditor]);
        assert_eq!(roles("sam"), &[Role::Manager, Role::Admin]);
        assert!(roles("nora").is_empty());
        let maria = people.iter().find(|p| p.subject == "maria").unwrap();
        assert_eq!(maria.name, "Maria Manager");
        assert_eq!(maria.email, "maria@seaview.example");
    }

    #[test]
    fn the_role_map_is_the_local_setups() {
        let lib = include_str!("../../tools/lib.sh");
        assert!(
            lib.contains(&format!("\"BERTH_OIDC_ROLE_MAP={DEMO_ROLE_MAP}\"")),
            "tools/lib.sh idp_berth_settings maps groups differently from DEMO_ROLE_MAP"
        );
    }
}
