//! The demo users, read from `tools/test-idp/users.json`: the identity provider serves that file,
//! the server's demo seed embeds it, and tests read it here, so the people exist in one place.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The file, embedded at compile time so tests need no working directory.
const USERS_JSON: &str = include_str!("../../../tools/test-idp/users.json");

/// One demo person as the identity provider knows them.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoUser {
    #[serde(skip)]
    pub login: String,
    pub password: String,
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
}

#[derive(Deserialize)]
struct File {
    users: BTreeMap<String, DemoUser>,
}

/// Every demo user, by login name order.
pub fn demo_users() -> Vec<DemoUser> {
    let file: File = serde_json::from_str(USERS_JSON).expect("tools/test-idp/users.json parses");
    file.users
        .into_iter()
        .map(|(login, user)| DemoUser { login, ..user })
        .collect()
}

/// One demo user by login; panics for an unknown name (a typo in a test).
pub fn demo_user(login: &str) -> DemoUser {
    demo_users()
        .into_iter()
        .find(|u| u.login == login)
        .unwrap_or_else(|| panic!("no demo user {login:?} in tools/test-idp/users.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_demo_people() {
        let logins: Vec<String> = demo_users().into_iter().map(|u| u.login).collect();
        assert_eq!(
            logins,
            ["ada", "alan", "audrey", "maria", "mark", "nora", "sam"]
        );
        assert_eq!(demo_user("maria").password, "maria-demo");
        assert!(demo_user("nora").groups.is_empty());
    }
}
