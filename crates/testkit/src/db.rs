//! The database's runtime role, for tests that act as the application does in a split set-up.

use sqlx::PgConnection;

/// The role the application runs as in a split set-up; tools/lib.sh creates it (and lets the
/// owner `SET ROLE` to it). Roles belong to the cluster, not to the test's database.
pub const RUNTIME_ROLE: &str = "berth_app";

/// Makes sure [`RUNTIME_ROLE`] exists and the test's user is a member of it (so that it may
/// `SET ROLE`), creating and granting it when the user may; otherwise panics saying what a
/// superuser must run.
pub async fn ensure_runtime_role(conn: &mut PgConnection) {
    let (exists, member): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                    AND pg_has_role(current_user, $1, 'MEMBER')",
    )
    .bind(RUNTIME_ROLE)
    .fetch_one(&mut *conn)
    .await
    .expect("reading pg_roles");
    let help = format!(
        "this test needs the role {RUNTIME_ROLE} and the test user to be a member of it; as a \
         superuser: CREATE ROLE {RUNTIME_ROLE} LOGIN PASSWORD '{RUNTIME_ROLE}'; \
         GRANT {RUNTIME_ROLE} TO <the DATABASE_URL user> (tools/lib.sh does)"
    );
    if !exists {
        sqlx::query(&format!("CREATE ROLE {RUNTIME_ROLE} NOLOGIN"))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{help} ({e})"));
    }
    if !member {
        sqlx::query(&format!("GRANT {RUNTIME_ROLE} TO current_user"))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{help} ({e})"));
    }
}
