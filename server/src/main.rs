//! `server` — run Berth (default); `server migrate` applies migrations and exits; `server
//! worker` runs only the provisioning worker (beside servers started with `BERTH_WORKER=false`,
//! or to add workers: they share the queue safely).

use anyhow::Context;
use leptos::prelude::get_configuration;
use server::{config::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let leptos = get_configuration(None).context("invalid LEPTOS_* configuration")?;
    let settings = match Settings::from_env(leptos.leptos_options.site_addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    telemetry::init(settings.log_json);

    match command.as_str() {
        "migrate" => {
            let pool = server::startup::connect(&settings, 1).await?;
            berth_db::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        "serve" => {
            let app = Application::build(settings, leptos.leptos_options).await?;
            tracing::info!(addr = %app.local_addr(), "Berth is listening");
            app.run_until_stopped(shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
        "worker" => {
            let Some(worker_settings) = settings.worker.as_ref() else {
                anyhow::bail!("`server worker` needs the worker on: unset BERTH_WORKER=false");
            };
            let pool = server::startup::connect(&settings, settings.db_max_connections).await?;
            berth_db::migrate(&pool).await?;
            let templates = server::startup::load_templates(&settings)?;
            let engine = server::startup::worker(worker_settings, pool, templates).await?;
            engine.run_until(shutdown_signal()).await?;
            tracing::info!("worker stopped");
            Ok(())
        }
        other => {
            eprintln!(
                "unknown command '{other}'; use `server`, `server migrate` or `server worker`"
            );
            std::process::exit(2);
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
