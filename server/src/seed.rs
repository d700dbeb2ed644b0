//! Demo accounts for local development and tests (`BERTH_SEED_DEMO=true`). Idempotent.

use app::api::session::DEMO_ISSUER;
use berth_db::{users, PgPool};
use berth_domain::Role;

/// (subject, name, roles): two managers, two admins, an auditor, one person with several
/// roles and one with none.
pub const DEMO_USERS: &[(&str, &str, &[Role])] = &[
    ("maria", "Maria Manager", &[Role::Manager]),
    ("mark", "Mark Manager", &[Role::Manager]),
    ("ada", "Ada Admin", &[Role::Admin]),
    ("alan", "Alan Admin", &[Role::Admin]),
    ("audrey", "Audrey Auditor", &[Role::Auditor]),
    ("sam", "Sam Superuser", &[Role::Manager, Role::Admin]),
    ("nora", "Nora Nobody", &[]),
];

pub async fn demo_users(pool: &PgPool) -> Result<(), berth_db::DbError> {
    for (subject, name, roles) in DEMO_USERS {
        let email = format!("{subject}@seaview.example");
        users::upsert(
            pool,
            &users::Identity {
                issuer: DEMO_ISSUER,
                subject,
                display_name: name,
                email: Some(&email),
                roles,
            },
        )
        .await?;
    }
    Ok(())
}
