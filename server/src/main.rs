//! `server` — run Berth (default), or `server migrate` to apply migrations and exit.

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
            let pool = berth_db::connect(
                settings
                    .database_url
                    .parse()
                    .context("invalid DATABASE_URL")?,
                1,
            )
            .await?;
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
        other => {
            eprintln!("unknown command '{other}'; use `server` or `server migrate`");
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
