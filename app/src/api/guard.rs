//! Server-side helpers every server function uses: the services, the signed-in person, the
//! policy check, and mapping an error to its HTTP status.

use berth_db::{companies::Company, users::User, PgPool};
use berth_domain::{policy, Action, Actor};
use leptos::prelude::*;
use std::future::Future;
use tower_sessions::Session;
use uuid::Uuid;

use crate::error::AppError;

/// Where the session keeps the id of its sign-in (`berth_db::sign_ins`): the row says who, and
/// whether the sign-in still stands (not signed out, not ended by an admin or the provider,
/// not past its absolute lifetime).
pub const SESSION_SIGN_IN_KEY: &str = "berth.sign_in";

/// Where the session keeps why its sign-in was ended by someone else (an admin, the identity
/// provider, its lifetime), until the sign-in page has said so once.
pub const SESSION_ENDED_KEY: &str = "berth.sign_in_ended";

/// Confirms a single sign-on sign-in at the identity provider when it is due (the server
/// provides it; the UI crate compiles no provider client).
pub trait SignInCheck: Send + Sync {
    /// The person of `current` as they stand after asking the provider, or `None` when the
    /// sign-in has ended (the provider no longer vouches for them).
    fn confirm(
        &self,
        current: berth_db::sign_ins::Current,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<User>, AppError>> + Send + '_>>;
}

/// What server functions need from the server, provided as context by the server crate.
#[derive(Clone)]
pub struct Services {
    pub pool: PgPool,
    pub company: Company,
    /// The development sign-in (pick a demo user) is enabled.
    pub dev_login: bool,
    /// Single sign-on is configured (the sign-in page offers it).
    pub sso: bool,
    /// The identity provider's origin: sign-out redirects there, so the page's CSP must allow it.
    pub idp_origin: Option<String>,
    /// Absolute session lifetime after sign-in.
    pub session_max_age: std::time::Duration,
    /// Re-checks single sign-on sign-ins at the provider (`None` without single sign-on).
    pub sign_in_check: Option<std::sync::Arc<dyn SignInCheck>>,
    /// Blueprints (an approval plans its run from one) and values templates.
    pub templates: std::sync::Arc<berth_blueprint::Templates>,
    /// The in-process worker's fingerprint of each blueprint's templates and settings, to
    /// refuse approving a plan made from others; `None` without an in-process worker.
    pub plan_setup: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
    /// Webhook endpoints may be on loopback and private addresses (local development).
    pub webhooks_allow_private: bool,
    /// Seals new webhook signing secrets at rest (`None`: stored as they are).
    pub sealer: Option<berth_db::sealing::Sealer>,
}

pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| {
        tracing::error!("Services missing from the server-function context");
        AppError::Internal
    })
}

/// The signed-in user, if any (read from the session cookie, then the database).
pub async fn current_user() -> Result<Option<User>, AppError> {
    let services = services()?;
    let session: Session = leptos_axum::extract().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })?;
    user_in_session(&services, &session).await
}

/// The user signed in on `session`, if any; plain axum routes (exports) call this directly.
/// A session whose sign-in has ended is emptied, so its cookie stops being sent.
pub async fn user_in_session(
    services: &Services,
    session: &Session,
) -> Result<Option<User>, AppError> {
    let Some(id) = session
        .get::<Uuid>(SESSION_SIGN_IN_KEY)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "unreadable session");
            AppError::Internal
        })?
    else {
        return Ok(None);
    };
    let user = match berth_db::sign_ins::current(&services.pool, id).await? {
        Some(current) => match (&services.sign_in_check, current.method) {
            (Some(check), berth_db::sign_ins::Method::Sso) => check.confirm(current).await?,
            _ => Some(current.user),
        },
        None => None,
    };
    if user.is_none() {
        let why = berth_db::sign_ins::why_ended(&services.pool, id).await?;
        match why.filter(|w| *w != berth_db::sign_ins::EndReason::SignedOut) {
            // The person did not end it: the session keeps only why, for the sign-in page to
            // say. Saved here, as a live-progress stream's re-check (which no response saves)
            // may be the first to find the sign-in ended.
            Some(why) => {
                session.clear().await;
                let kept = match session.insert(SESSION_ENDED_KEY, why.as_str()).await {
                    Ok(()) => session.save().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "cannot keep why a sign-in ended");
                    let _ = session.flush().await;
                }
            }
            None => {
                let _ = session.flush().await;
            }
        }
    }
    Ok(user)
}

/// The signed-in person, refused with 401/403 when the policy refuses `action`. Refusals are
/// recorded in the sign-in audit trail.
///
/// Everything read from the reactive context is read before the first real await: a resource
/// whose component was re-rendered meanwhile (nested suspense during SSR) loses its context.
pub async fn require(action: Action) -> Result<Actor, AppError> {
    let services = services()?;
    let source_addr = source_addr().await;
    let session: Session = leptos_axum::extract().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })?;
    let actor = user_in_session(&services, &session)
        .await?
        .map(|u| u.actor());
    check(&services, actor, action, source_addr).await
}

/// The policy check behind [`require`], for callers that found the user themselves: refusals
/// are recorded in the sign-in audit trail.
pub async fn check(
    services: &Services,
    actor: Option<Actor>,
    action: Action,
    source_addr: Option<String>,
) -> Result<Actor, AppError> {
    if let Err(denied) = policy::authorize(actor.as_ref(), action) {
        let reason = format!("{action:?}: {denied:?}");
        record_refusal(
            services,
            actor.as_ref().map(|a| a.user_id),
            &reason,
            source_addr,
        )
        .await;
        return Err(denied.into());
    }
    actor.ok_or(AppError::Unauthorized("Sign in first.".into()))
}

/// Records a refusal (`reason` says of what, never a secret) in the sign-in audit trail: the
/// policy's, and those the core makes against a record (deciding one's own request,
/// withdrawing someone else's). A failure to record is logged; the refusal stands.
pub async fn record_refusal(
    services: &Services,
    user_id: Option<Uuid>,
    reason: &str,
    source_addr: Option<String>,
) {
    let event = berth_db::audit::AuthEvent {
        user_id,
        subject: None,
        source_addr,
        reason: Some(reason),
    };
    if let Err(e) = berth_db::audit::record(
        &services.pool,
        berth_db::audit::AuthEventKind::AccessDenied,
        event,
    )
    .await
    {
        tracing::error!(error = %e, "cannot record an access-denied event");
    }
}

/// `result`, with a refusal of `actor` recorded as [`record_refusal`] does (what: e.g.
/// "decide request <id>").
pub async fn audited<T>(
    services: &Services,
    actor: &Actor,
    what: &str,
    source_addr: Option<String>,
    result: Result<T, AppError>,
) -> Result<T, AppError> {
    if let Err(AppError::Forbidden(why)) = &result {
        let reason = format!("{what}: {why}");
        record_refusal(services, Some(actor.user_id), &reason, source_addr).await;
    }
    result
}

/// The caller's network address, for the audit trail.
pub async fn source_addr() -> Option<String> {
    leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok()
        .map(|c| c.0.ip().to_string())
}

/// Records an administrative act of `user_id` (a token made or revoked, a service account
/// changed, a setting changed) in the sign-in audit trail and the log. `what` names what was
/// done to what, never a secret. A failure to record is logged; the act stands.
pub async fn audit(
    services: &Services,
    kind: berth_db::audit::AuthEventKind,
    user_id: Uuid,
    source_addr: Option<String>,
    what: &str,
) {
    tracing::info!(kind = kind.as_str(), %user_id, what, "audit");
    let event = berth_db::audit::AuthEvent {
        user_id: Some(user_id),
        subject: None,
        source_addr,
        reason: Some(what),
    };
    if let Err(e) = berth_db::audit::record(&services.pool, kind, event).await {
        tracing::error!(error = %e, kind = kind.as_str(), "cannot record an audit event");
    }
}

/// Marks the response as never to be stored by a cache (it carries a secret shown once).
pub fn no_store() {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
    }
}

/// Runs a server function body; on error sets the response's HTTP status to match.
pub async fn respond<T>(body: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
    let response = use_context::<leptos_axum::ResponseOptions>();
    let result = body.await;
    if let (Err(e), Some(response)) = (&result, response) {
        response.set_status(
            http::StatusCode::from_u16(e.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    result
}
