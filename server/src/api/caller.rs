//! Who calls `/api/v1`: a bearer token only (no cookies, so no CSRF surface), looked up by the
//! hash of its secret on every call, so a revoked token or a removed role counts at once.

use std::net::SocketAddr;

use app::api::guard::{self, Services};
use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{header, request::Parts, StatusCode},
};
use berth_db::tokens::Token;
use berth_domain::{
    token::{PresentedSecret, Scope},
    Action, Actor,
};

use super::{limit::ApiLimiter, problem::Problem};

/// A caller whose token is live.
pub struct Caller {
    pub actor: Actor,
    pub token: Token,
    pub services: Services,
    addr: Option<String>,
    /// Kept to re-check the token during a long-lived answer (see [`Caller::recheck`]).
    secret: PresentedSecret,
}

impl<S> FromRequestParts<S> for Caller
where
    Services: FromRef<S>,
    ApiLimiter: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let services = Services::from_ref(state);
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|v| PresentedSecret::parse(v.trim()))
            .ok_or_else(Problem::unauthenticated)?
            .1;
        let bearer = berth_db::tokens::authenticate(&services.pool, &secret, addr.as_deref())
            .await?
            .ok_or_else(Problem::unauthenticated)?;
        ApiLimiter::from_ref(state)
            .check(bearer.token.id)
            .await
            .map_err(Problem::too_many)?;
        let mut actor = bearer.user.actor();
        actor.token_id = Some(bearer.token.id);
        Ok(Caller {
            actor,
            token: bearer.token,
            services,
            addr,
            secret,
        })
    }
}

impl Caller {
    /// The caller, when both the token's scopes and the holder's roles allow `action`; policy
    /// refusals are recorded in the sign-in audit trail, as the pages' are.
    pub async fn allow(&self, action: Action) -> Result<Actor, Problem> {
        self.require_scope(Scope::needed_for(action))?;
        Ok(guard::check(
            &self.services,
            Some(self.actor.clone()),
            action,
            self.addr.clone(),
        )
        .await?)
    }

    /// The caller's network address, for the audit trail.
    pub fn addr(&self) -> Option<String> {
        self.addr.clone()
    }

    /// For a long-lived answer (live progress): whether the token is still live and still
    /// allows `action` (revoked, expired, a scope or a role gone: no).
    pub fn recheck(&self, action: Action) -> crate::routes::progress::Recheck {
        let (pool, secret, addr) = (
            self.services.pool.clone(),
            self.secret.clone(),
            self.addr.clone(),
        );
        let scope = Scope::needed_for(action);
        std::sync::Arc::new(move || {
            let (pool, secret, addr) = (pool.clone(), secret.clone(), addr.clone());
            Box::pin(async move {
                match berth_db::tokens::authenticate(&pool, &secret, addr.as_deref()).await {
                    Ok(Some(b)) => {
                        b.token.scopes.contains(&scope)
                            && berth_domain::policy::authorize(Some(&b.user.actor()), action)
                                .is_ok()
                    }
                    _ => false,
                }
            })
        })
    }

    /// 403 unless the token carries `scope` (for calls whose role check the core makes against
    /// the record, such as deciding a request: not the requester's own).
    pub fn require_scope(&self, scope: Scope) -> Result<(), Problem> {
        if self.token.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("This token lacks the {scope} scope."),
            ))
        }
    }
}
