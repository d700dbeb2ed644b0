//! Helpers shared by the storage test files.

use berth_db::{users, PgPool};
use berth_domain::{Actor, Role};

/// A signed-in person with `roles`, recorded as the IdP would (issuer `test`).
pub async fn person(pool: &PgPool, sub: &str, roles: &[Role]) -> Actor {
    users::upsert(
        pool,
        &users::Identity {
            issuer: "test",
            subject: sub,
            display_name: &format!("User {sub}"),
            email: None,
            roles,
        },
    )
    .await
    .unwrap()
    .actor()
}
