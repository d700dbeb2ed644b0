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

use super::problem::Problem;

/// A caller whose token is live.
pub struct Caller {
    pub actor: Actor,
    pub token: Token,
    pub services: Services,
    addr: Option<String>,
}

impl<S> FromRequestParts<S> for Caller
where
    Services: FromRef<S>,
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
        Ok(Caller {
            actor: bearer.user.actor(),
            token: bearer.token,
            services,
            addr,
        })
    }
}

impl Caller {
    /// The caller, when both the token's scopes and the holder's roles allow `action`; policy
    /// refusals are recorded in the sign-in audit trail, as the pages' are.
    pub async fn allow(&self, action: Action) -> Result<Actor, Problem> {
        let scope = Scope::needed_for(action);
        if !self.token.scopes.contains(&scope) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("This token lacks the {scope} scope."),
            ));
        }
        Ok(guard::check(
            &self.services,
            Some(self.actor.clone()),
            action,
            self.addr.clone(),
        )
        .await?)
    }
}
