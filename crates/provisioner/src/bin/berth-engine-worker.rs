//! A standalone engine and plan worker configured from the environment: the crash-safety and
//! multi-process tests start and SIGKILL it; operators may use it to drain a queue by hand.
//! The product's worker runs inside the server binary (or `server worker`), configured by the
//! same [`WorkerSettings`] variables plus `DATABASE_URL` and `BERTH_TEMPLATES`.

use std::sync::Arc;

use berth_blueprint::Templates;
use berth_provisioner::{templates_dir, WorkerSettings};
use berth_settings::Env;

#[tokio::main]
async fn main() -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_smithy_runtime=warn,aws_config=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    // Read once, every problem listed together; the URL stays a secret until the pool connects.
    let mut env = Env::process();
    let database_url = env.database_url();
    let templates = templates_dir(&env);
    let settings = WorkerSettings::read(&mut env);
    let (database_url, templates, settings) = env
        .finish(|| (database_url, templates, settings))
        .map_err(|p| p.to_string())?;
    let pool = sqlx::PgPool::connect(database_url.expose())
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let templates = Templates::open(&templates).map_err(|e| e.to_string())?;
    let workers = settings.workers(pool, Arc::new(templates)).await?;
    workers
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}
