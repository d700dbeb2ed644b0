//! Builds the application (database, sessions, routes) and runs it until told to stop.

use std::{
    future::Future,
    sync::{Arc, OnceLock},
};

use anyhow::Context;
use app::{api::guard::Services, shell, App};
use axum::{
    middleware,
    routing::{any, get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tower_http::{
    limit::RequestBodyLimitLayer,
    services::{ServeDir, ServeFile},
    timeout::RequestBodyTimeoutLayer,
    trace::TraceLayer,
};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::{config::Settings, middleware as mw, routes, seed, state::AppState};

/// A bound, ready-to-run server. Tests build one on port 0.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// How long a client may take to send a request's headers.
    client_timeout: std::time::Duration,
    trusted_proxies: mw::client_addr::TrustedProxies,
    /// The in-process provisioning worker, when enabled.
    worker: Option<Worker>,
    /// Webhook deliveries and email.
    notifiers: berth_notify::Notifiers,
    progress: crate::progress::ProgressHub,
}

/// The engine and the plan worker running the real provisioner.
pub type Worker = berth_provisioner::Workers;

/// Loads and validates the blueprints and values templates (errors name file and line).
pub fn load_templates(settings: &Settings) -> anyhow::Result<Arc<berth_blueprint::Templates>> {
    let templates =
        berth_blueprint::Templates::open(&settings.templates_dir).with_context(|| {
            format!(
                "cannot load templates from {}",
                settings.templates_dir.display()
            )
        })?;
    Ok(Arc::new(templates))
}

/// The provisioning worker for `settings` (AWS and Rancher clients connected lazily).
pub async fn worker(
    settings: &berth_provisioner::WorkerSettings,
    pool: berth_db::PgPool,
    templates: Arc<berth_blueprint::Templates>,
) -> anyhow::Result<Worker> {
    settings
        .workers(pool, templates)
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot set up the provisioning worker")
}

/// Brings the webhook signing secrets to the configured form before anything is delivered
/// (sealed with `BERTH_SEALING_KEY`, or as they are without it), and says which in the log.
async fn seal_webhook_secrets(
    pool: &berth_db::PgPool,
    sealer: Option<&berth_db::sealing::Sealer>,
) -> anyhow::Result<()> {
    let at_rest = berth_db::webhooks::seal_secrets(pool, sealer)
        .await
        .context("cannot bring the webhook signing secrets to the configured form")?;
    match sealer {
        Some(sealer) => tracing::info!(
            key_id = %sealer.key_id(),
            sealed_now = at_rest.sealed_now,
            "webhook signing secrets are sealed at rest"
        ),
        None => tracing::warn!(
            endpoints = at_rest.plain,
            "webhook signing secrets are stored unsealed: set BERTH_SEALING_KEY (docs/security.md)"
        ),
    }
    Ok(())
}

/// Opens the pool on `DATABASE_URL`.
pub async fn connect(
    settings: &Settings,
    max_connections: u32,
) -> anyhow::Result<berth_db::PgPool> {
    connect_to(&settings.database_url, max_connections).await
}

/// Opens a pool on `url` (`DATABASE_URL`, or the owner's for `server migrate`): the one place a
/// database URL (and its password) is exposed.
pub async fn connect_to(
    url: &berth_settings::DatabaseUrl,
    max_connections: u32,
) -> anyhow::Result<berth_db::PgPool> {
    let options: PgConnectOptions = url
        .expose()
        .parse()
        .context("the database URL is not a valid PostgreSQL URL")?;
    berth_db::connect(options, max_connections)
        .await
        .context("cannot connect to PostgreSQL")
}

impl Application {
    /// Connects to the database, migrates, seeds what is asked for, and binds the listener.
    pub async fn build(settings: Settings, leptos_options: LeptosOptions) -> anyhow::Result<Self> {
        let pool = connect(&settings, settings.db_max_connections).await?;
        Self::build_with_pool(settings, leptos_options, pool).await
    }

    /// As [`Application::build`], on an existing pool (tests get a fresh database each).
    pub async fn build_with_pool(
        settings: Settings,
        leptos_options: LeptosOptions,
        pool: berth_db::PgPool,
    ) -> anyhow::Result<Self> {
        // Only when something is pending: a runtime role (no owner's rights) cannot run the
        // migrator at all, and needs `server migrate` run as the owner first.
        crate::schema::ensure_current(&pool).await?;
        match berth_db::can_disable_audit_triggers(&pool).await {
            Ok(true) => tracing::warn!(
                "the database role Berth runs as owns the audit trail (or is a superuser), so it \
                 could switch off its append-only triggers: run migrations as the owner and Berth \
                 as a role given berth_grant_runtime_role (docs/security.md)"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether the audit trail's triggers are safe")
            }
        }
        let company =
            berth_db::companies::ensure(&pool, &settings.company_name, &settings.company_slug)
                .await
                .context("cannot record the company")?;
        let templates = load_templates(&settings)?;
        let worker = match &settings.worker {
            Some(w) => Some(worker(w, pool.clone(), templates.clone()).await?),
            None => None,
        };
        seal_webhook_secrets(&pool, settings.notify.webhooks.sealer.as_ref()).await?;
        let notifiers = berth_notify::Notifiers::new(pool.clone(), &settings.notify)
            .context("cannot set up notifications")?;
        if settings.seed_demo {
            seed::demo_users(&pool)
                .await
                .context("cannot seed demo users")?;
        }

        let store = PostgresStore::new(pool.clone());
        crate::schema::ensure_session_table(&pool, &store).await?;
        let cookie_name = if settings.secure_cookies {
            "__Host-berth.sid"
        } else {
            "berth.sid"
        };
        let sessions = SessionManagerLayer::new(store.clone())
            .with_name(cookie_name)
            .with_secure(settings.secure_cookies)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::try_from(settings.session_idle)
                    .context("session idle timeout out of range")?,
            ));

        let idp_origin = settings.oidc.as_ref().and_then(|o| {
            berth_auth::Url::parse(&o.issuer_url)
                .ok()
                .map(|u| u.origin().ascii_serialization())
        });
        let oidc = settings
            .oidc
            .clone()
            .map(|o| Arc::new(berth_auth::LazyOidcClient::new(o)));
        let sign_in_check = oidc.as_ref().map(|oidc| {
            Arc::new(crate::sessions::ProviderCheck {
                pool: pool.clone(),
                oidc: oidc.clone(),
            }) as Arc<dyn app::api::guard::SignInCheck>
        });
        let login_cookie = settings.oidc.as_ref().map(|o| {
            crate::routes::pending_login::PendingLoginCookie::new(
                &o.client_secret,
                settings.secure_cookies,
            )
        });
        let services = Services {
            sign_in_check,
            pool,
            company,
            dev_login: settings.dev_login,
            sso: settings.oidc.is_some(),
            idp_origin,
            session_max_age: settings.session_absolute,
            templates,
            plan_setup: worker
                .as_ref()
                .map(|w| Arc::new(w.provisioner().setup_digests())),
            webhooks_allow_private: settings.notify.webhooks.allow_private,
            sealer: settings.notify.webhooks.sealer.clone(),
        };
        let progress =
            crate::progress::ProgressHub::start(services.clone(), settings.limits.clone());
        let state = AppState {
            leptos_options: leptos_options.clone(),
            services: services.clone(),
            oidc,
            progress: progress.clone(),
            api_limiter: crate::api::limit::ApiLimiter::new(
                services.pool.clone(),
                settings.api_rate_per_minute,
                settings.api_burst,
            ),
            exports: Default::default(),
            session_store: Arc::new(store.clone()),
            login_cookie,
            login_limiter: crate::routes::pending_login::LoginLimiter::new(services.pool.clone()),
        };
        crate::sessions::spawn_purge(
            state.services.pool.clone(),
            store,
            crate::sessions::PURGE_EVERY,
        );

        crate::api::spawn_housekeeping(state.services.pool.clone());
        crate::audit::spawn_daily_head_log(state.services.pool.clone(), state.services.company.id);
        let routes = route_list();
        let context = {
            let services = services.clone();
            move || {
                provide_context(services.clone());
                leptos::nonce::provide_nonce();
            }
        };
        let server_fn_context = {
            let services = services.clone();
            move || provide_context(services.clone())
        };
        let server_fns = move |req: axum::extract::Request| {
            leptos_axum::handle_server_fns_with_context(server_fn_context.clone(), req)
        };

        let mut router = Router::new()
            .route("/healthz", get(routes::health::healthz))
            .route("/readyz", get(routes::health::readyz))
            .route("/auth/login", get(routes::auth::login))
            .route("/auth/callback", get(routes::auth::callback))
            .route("/auth/logout", post(routes::auth::logout))
            .nest("/api/v1", crate::api::router())
            .route("/api/v1/{*rest}", any(crate::api::not_found))
            .route("/docs/api", get(crate::api::reference::page))
            .route("/api/{*fn_name}", post(server_fns))
            .route("/environments/{id}/progress", get(routes::progress::stream))
            .route(
                "/environments/{id}/history.csv",
                get(routes::export::history_csv),
            )
            .route(
                "/environments/{id}/history.json",
                get(routes::export::history_json),
            )
            .route("/audit/environments.csv", get(routes::export::audit_csv));
        if settings.dev_login {
            router = router.route("/auth/dev-login", post(routes::auth::dev_login));
        }
        // Static files are served by `ServeDir`, not by leptos_axum's `file_and_error_handler`:
        // that handler answers a file inside `Owner::new()`, a child of whatever reactive owner
        // the worker thread last had current, and then moves that owner's response headers onto
        // the file's response — so a page rendering at the same moment lost its
        // Content-Security-Policy (and would lose a status or redirect the same way). The
        // security test `pages_keep_their_policy_while_files_are_served` shows it.
        let site_root = std::path::Path::new(leptos_options.site_root.as_ref());
        let not_found = leptos_axum::render_app_async_with_context(context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        });
        let router = router
            .nest_service(
                &format!("/{}", leptos_options.site_pkg_dir),
                ServeDir::new(site_root.join(leptos_options.site_pkg_dir.as_ref())),
            )
            .route_service(
                "/favicon.ico",
                ServeFile::new(site_root.join("favicon.ico")),
            )
            .leptos_routes_with_context(&state, routes, context, {
                let options = leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(move |req: axum::extract::Request| not_found(req))
            .with_state(state)
            .layer(middleware::from_fn_with_state(
                services.clone(),
                routes::server_fns::identity_before_arguments,
            ))
            .layer(sessions)
            // Bodies: at most this large (413 when announced larger; an error when read past),
            // and no longer than this between two parts of one.
            .layer(RequestBodyLimitLayer::new(settings.limits.body_bytes))
            .layer(RequestBodyTimeoutLayer::new(settings.limits.client_timeout))
            // A response's head within this time (a streamed body may go on after it).
            .layer(middleware::from_fn_with_state(
                mw::timeout::Timeout {
                    after: settings.limits.request_timeout,
                    pool: services.pool.clone(),
                },
                mw::timeout::layer,
            ))
            .layer(middleware::from_fn_with_state(
                Arc::<str>::from(settings.public_origin.as_str()),
                mw::csrf::layer,
            ))
            .layer(middleware::from_fn_with_state(
                settings.secure_cookies,
                mw::headers::layer,
            ))
            .layer(TraceLayer::new_for_http());

        let listener = TcpListener::bind(settings.site_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.site_addr))?;
        Ok(Self {
            listener,
            router,
            client_timeout: settings.limits.client_timeout,
            trusted_proxies: settings.trusted_proxies.clone(),
            worker,
            notifiers,
            progress,
        })
    }

    /// The live-progress hub (tests read what a change cost).
    pub fn progress(&self) -> crate::progress::ProgressHub {
        self.progress.clone()
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves (and provisions, with the worker on) until `shutdown` completes, then finishes
    /// in-flight requests and lets running steps finish or hands them back.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = self.worker.map(|workers| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let result = workers
                    .run_until(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
                // Said at once: approvals keep queueing runs that nothing here will take.
                if let Err(e) = &result {
                    tracing::error!(error = %e, "the provisioning worker stopped");
                }
                result
            })
        });
        let notifiers = {
            let stopped = stopped.clone();
            tokio::spawn(self.notifiers.run_until(move || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            }))
        };
        let limits = (self.client_timeout, self.trusted_proxies);
        let served = serve(self.listener, self.router, limits, {
            let progress = self.progress.clone();
            async move {
                shutdown.await;
                progress.close();
                let _ = stop.send(true);
            }
        })
        .await;
        notifiers
            .await
            .context("the notification workers panicked")?;
        if let Some(worker) = worker {
            worker
                .await
                .context("the provisioning worker panicked")?
                .context("the provisioning worker failed")?;
        }
        served
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections finish.
///
/// What `axum::serve` does, plus a timer: a client gets `client_timeout` to send a request's
/// headers (the request body has its own limit, see [`Application::build_with_pool`]), so a
/// connection trickling bytes is cut off instead of held open. Each request carries the
/// client's address (`ConnectInfo`: the peer's, or the one a trusted proxy forwarded) for the
/// audit trail and the login limit.
async fn serve(
    listener: TcpListener,
    router: Router,
    (client_timeout, trusted): (std::time::Duration, mw::client_addr::TrustedProxies),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(client_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let trusted = Arc::new(trusted);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed responses (exports, live progress) end with a small write; without
        // TCP_NODELAY it waits for the client's delayed ACK (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let trusted = trusted.clone();
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                let client = trusted.client(peer, req.headers());
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(client));
                req
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The app's routes, worked out once per process. Working them out renders the app with resource
/// loading switched off for the whole process (leptos_server's `SuppressResourceLoad`), so a page
/// whose data began loading meanwhile would wait forever (leptos-rs/leptos#4773): a second
/// generation while pages are served, as when tests start servers in one process, must not happen.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}
