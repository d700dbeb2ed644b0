//! `server` — run Berth (default); `server migrate` applies migrations as the tables' owner
//! (`BERTH_MIGRATE_DATABASE_URL`, else `DATABASE_URL`), grants the runtime role (see
//! `server::schema`) and exits; `server worker` runs only the provisioning worker (beside
//! servers started with `BERTH_WORKER=false`, or to add workers: they share the queue safely);
//! `server token LOGIN SCOPES [DAYS]` prints a new personal API token for the person signed in
//! as LOGIN (scopes comma-separated, no wider than their roles) — for bootstrapping automation
//! from a shell with database access;
//! `server verify-audit ['seq=N; sha256=HEX']` verifies the hash-chained history (and that a
//! head kept earlier is still in it), exiting 1 when it does not hold.

use anyhow::Context;
use leptos::prelude::get_configuration;
use server::{config::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let leptos = get_configuration(None).context("invalid LEPTOS_* configuration")?;
    // Only serving signs people in; the other commands need no sign-in settings.
    let read = if command == "serve" {
        Settings::from_env
    } else {
        Settings::from_env_without_sign_in
    };
    let settings = match read(leptos.leptos_options.site_addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    telemetry::init(settings.log_json);

    match command.as_str() {
        "migrate" => {
            let migrate = match server::schema::MigrateSettings::from_env() {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            };
            let role = migrate.runtime_role(&settings.database_url)?;
            let pool =
                server::startup::connect_to(migrate.owner_url(&settings.database_url), 1).await?;
            server::schema::migrate(&pool, role.as_deref()).await
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
            server::schema::wait_until_current(&pool).await?;
            let templates = server::startup::load_templates(&settings)?;
            let engine = server::startup::worker(worker_settings, pool, templates).await?;
            engine.run_until(shutdown_signal()).await?;
            tracing::info!("worker stopped");
            Ok(())
        }
        "token" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let [login, scopes, rest @ ..] = args.as_slice() else {
                anyhow::bail!(
                    "usage: server token LOGIN SCOPES [DAYS]  (e.g. maria read,request 30)"
                );
            };
            let days = rest.first().map(String::as_str).unwrap_or("30");
            let pool = server::startup::connect(&settings, 1).await?;
            server::schema::ensure_current(&pool).await?;
            let secret = server::tokens::issue_for_login(&pool, login, scopes, days).await?;
            println!("{secret}");
            Ok(())
        }
        "verify-audit" => {
            let pool = server::startup::connect(&settings, 1).await?;
            server::schema::ensure_current(&pool).await?;
            let company =
                berth_db::companies::ensure(&pool, &settings.company_name, &settings.company_slug)
                    .await?;
            let kept = std::env::args().nth(2);
            if !server::audit::verify_command(&pool, company.id, kept.as_deref()).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        other => {
            eprintln!(
                "unknown command '{other}'; use `server`, `server migrate`, `server worker`, \
                 `server token` or `server verify-audit`"
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
