//! Who changes the schema and who uses it. `server migrate` connects as the role that owns the
//! tables (`BERTH_MIGRATE_DATABASE_URL`), applies Berth's and the session store's migrations
//! and grants the runtime role what the application needs; everything else connects as the
//! runtime role (`DATABASE_URL`), which may only insert into and read the audit trails and
//! cannot apply migrations (docs/security.md, "Database roles").

use std::time::Duration;

use anyhow::Context;
use berth_db::PgPool;
use berth_settings::{DatabaseUrl, Env, Problems};
use sqlx::postgres::PgConnectOptions;
use tower_sessions_sqlx_store::PostgresStore;

/// The session store's table (`PostgresStore::new`'s default schema and table).
pub const SESSION_TABLE: &str = "tower_sessions.session";

/// What `server migrate` reads beside the usual settings.
pub struct MigrateSettings {
    /// `BERTH_MIGRATE_DATABASE_URL`: the owner's URL; without it `DATABASE_URL` migrates.
    pub owner_url: Option<DatabaseUrl>,
    /// `BERTH_RUNTIME_DB_ROLE`: the role to grant; without it, `DATABASE_URL`'s user when the
    /// owner's URL names another user.
    pub runtime_role: Option<String>,
}

impl MigrateSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Problems> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Problems> {
        let mut env = Env::new(get);
        const OWNER: &str = "BERTH_MIGRATE_DATABASE_URL";
        let owner_url = env.optional(OWNER).and_then(|raw| {
            DatabaseUrl::parse(raw)
                .map_err(|e| env.problem(format!("{OWNER}: {e}")))
                .ok()
        });
        let runtime_role = env
            .optional("BERTH_RUNTIME_DB_ROLE")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        env.finish(|| Self {
            owner_url,
            runtime_role,
        })
    }

    /// The URL `server migrate` connects with.
    pub fn owner_url<'a>(&'a self, database_url: &'a DatabaseUrl) -> &'a DatabaseUrl {
        self.owner_url.as_ref().unwrap_or(database_url)
    }

    /// The runtime role to grant: the one named, else `DATABASE_URL`'s user when it is not the
    /// owner URL's user, else none (one role owns the tables and runs Berth).
    pub fn runtime_role(&self, database_url: &DatabaseUrl) -> anyhow::Result<Option<String>> {
        if let Some(role) = &self.runtime_role {
            return Ok(Some(role.clone()));
        }
        let Some(owner) = &self.owner_url else {
            return Ok(None);
        };
        let user = |url: &DatabaseUrl, name: &str| -> anyhow::Result<String> {
            let options: PgConnectOptions = url
                .expose()
                .parse()
                .with_context(|| format!("{name} is not a valid PostgreSQL URL"))?;
            Ok(options.get_username().to_string())
        };
        let runtime = user(database_url, "DATABASE_URL")?;
        let owner = user(owner, "BERTH_MIGRATE_DATABASE_URL")?;
        Ok((runtime != owner).then_some(runtime))
    }
}

/// `server migrate`, connected as the owner: Berth's migrations, the session store's table, then
/// (when a runtime role is named) the runtime role's grants, renewed after every migration so
/// that tables added since are covered. Idempotent.
pub async fn migrate(owner: &PgPool, runtime_role: Option<&str>) -> anyhow::Result<()> {
    berth_db::migrate(owner)
        .await
        .context("database migration failed")?;
    PostgresStore::new(owner.clone())
        .migrate()
        .await
        .context("session store migration failed")?;
    tracing::info!("migrations applied");
    match runtime_role {
        Some(role) => {
            berth_db::grant_runtime_role(owner, role)
                .await
                .with_context(|| {
                    format!(
                        "cannot grant the runtime role {role} its rights (it must exist, own \
                         nothing, and be neither a superuser nor a member of the owner)"
                    )
                })?;
            tracing::info!(role, "runtime role granted what the application needs");
        }
        None => tracing::info!(
            "no runtime role named (BERTH_RUNTIME_DB_ROLE, or a BERTH_MIGRATE_DATABASE_URL \
             whose user differs from DATABASE_URL's): nothing granted"
        ),
    }
    Ok(())
}

/// Why the schema is not ready for this build.
#[derive(Debug, thiserror::Error)]
#[error(
    "{pending} database migration(s) are pending and the role in DATABASE_URL cannot apply \
     them (it is not the tables' owner): run `server migrate` with the owner's URL in \
     BERTH_MIGRATE_DATABASE_URL first (docs/deploy.md)"
)]
pub struct NeedsOwner {
    pub pending: usize,
}

/// Applies pending migrations when the connection's role may (one role owns the tables and runs
/// Berth); when it may not, the error says to run `server migrate` as the owner. With nothing
/// pending, the normal case for a runtime role, it only reads the migration record.
pub async fn ensure_current(pool: &PgPool) -> anyhow::Result<()> {
    let pending = berth_db::pending_migrations(pool)
        .await
        .context("cannot read which migrations are applied")?;
    if pending.is_empty() {
        return Ok(());
    }
    if !berth_db::can_migrate(pool)
        .await
        .context("cannot read the database role's rights")?
    {
        return Err(NeedsOwner {
            pending: pending.len(),
        }
        .into());
    }
    berth_db::migrate(pool).await.with_context(|| {
        format!(
            "database migration failed ({} pending; when Berth runs as a runtime role, run \
             `server migrate` as the database owner first)",
            pending.len()
        )
    })
}

/// As [`ensure_current`], but waits while only the owner can apply what is pending, or while
/// the role has not been granted its rights yet: a worker may start before the web pods'
/// `server migrate` has run.
pub async fn wait_until_current(pool: &PgPool) -> anyhow::Result<()> {
    let mut told = false;
    loop {
        match ensure_current(pool).await {
            Err(e) if e.is::<NeedsOwner>() || lacks_privilege(&e) => {
                if !told {
                    tracing::warn!("{e}; waiting for it");
                    told = true;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            other => return other,
        }
    }
}

/// Whether PostgreSQL refused for want of a privilege (42501), e.g. reading the migration
/// record before `server migrate` granted the runtime role.
fn lacks_privilege(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db.code().as_deref() == Some("42501"),
            _ => false,
        })
}

/// Creates the session store's table only when it is missing: a runtime role may not create
/// it (nor the schema it lives in), and `server migrate` has made it.
pub async fn ensure_session_table(pool: &PgPool, store: &PostgresStore) -> anyhow::Result<()> {
    if berth_db::relation_exists(pool, SESSION_TABLE)
        .await
        .context("cannot look for the session table")?
    {
        return Ok(());
    }
    store.migrate().await.with_context(|| {
        format!(
            "cannot create the session table {SESSION_TABLE} (when Berth runs as a runtime \
             role, run `server migrate` as the database owner first)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<MigrateSettings, Problems> {
        MigrateSettings::from_lookup(|k| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn url(raw: &str) -> DatabaseUrl {
        DatabaseUrl::parse(raw).unwrap()
    }

    #[test]
    fn the_runtime_role_is_named_or_taken_from_database_url() {
        let runtime = url("postgres://berth_app:pw@db:5432/berth");
        // One URL: one role does both, nothing to grant.
        let one = settings(&[]).unwrap();
        assert_eq!(one.runtime_role(&runtime).unwrap(), None);
        assert_eq!(one.owner_url(&runtime).expose(), runtime.expose());
        // The owner's URL beside the runtime's: DATABASE_URL's user is the runtime role.
        let two = settings(&[(
            "BERTH_MIGRATE_DATABASE_URL",
            "postgres://berth:secret@db:5432/berth",
        )])
        .unwrap();
        assert_eq!(
            two.runtime_role(&runtime).unwrap().as_deref(),
            Some("berth_app")
        );
        assert!(two.owner_url(&runtime).expose().contains("berth:secret@"));
        let owner = url("postgres://berth:other@db:5432/berth");
        assert_eq!(two.runtime_role(&owner).unwrap(), None, "the same user");
        // Named: wins.
        let named = settings(&[
            ("BERTH_MIGRATE_DATABASE_URL", "postgres://berth:s@db/berth"),
            ("BERTH_RUNTIME_DB_ROLE", " berth_web "),
        ])
        .unwrap();
        assert_eq!(
            named.runtime_role(&runtime).unwrap().as_deref(),
            Some("berth_web")
        );
    }

    #[test]
    fn a_bad_owner_url_is_reported_without_its_password() {
        let Err(e) = settings(&[("BERTH_MIGRATE_DATABASE_URL", "mysql://u:hunter2@db/x")]) else {
            panic!("accepted");
        };
        let text = e.to_string();
        assert!(text.contains("BERTH_MIGRATE_DATABASE_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
