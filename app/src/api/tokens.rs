//! Personal access tokens: a signed-in member lists, makes and revokes their own. The secret is
//! in the answer to the call that made the token, and nowhere else, ever.

use berth_domain::{token::Scope, SpecErrors};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Stamp;
use crate::error::AppError;

/// A token as lists show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: Uuid,
    /// Whose token it is (a person, or a service account).
    pub user_id: Uuid,
    pub name: String,
    pub shown_prefix: String,
    pub scopes: Vec<Scope>,
    pub created: Stamp,
    pub expires: Stamp,
    /// Past its expiry (refused like a revoked one).
    pub expired: bool,
    pub revoked: Option<Stamp>,
    pub last_used: Option<Stamp>,
    pub last_used_addr: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<berth_db::tokens::Token> for TokenView {
    fn from(t: berth_db::tokens::Token) -> Self {
        TokenView {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            shown_prefix: t.shown_prefix,
            scopes: t.scopes,
            created: t.created_at.into(),
            expired: t.expires_at <= time::OffsetDateTime::now_utc(),
            expires: t.expires_at.into(),
            revoked: t.revoked_at.map(Into::into),
            last_used: t.last_used_at.map(Into::into),
            last_used_addr: t.last_used_addr,
        }
    }
}

/// The token page's data: the caller's tokens and what a new one may be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensView {
    pub tokens: Vec<TokenView>,
    /// The scopes the caller's roles allow on a token (the form offers only these).
    pub allowed_scopes: Vec<Scope>,
    /// The longest a token may live, in days (the company's setting).
    pub max_days: u32,
}

/// The outcome of asking for a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IssueOutcome {
    /// Made; `secret` is shown this once and cannot be read again.
    Issued {
        token: Box<TokenView>,
        secret: String,
    },
    /// One or more fields were refused; nothing was made.
    Invalid(SpecErrors),
}

/// The caller's own tokens, newest first, with what the form may offer. Any member (a person
/// with a role) may have tokens.
#[server(endpoint = "my_tokens", output = super::codec::JsonOut)]
pub async fn my_tokens() -> Result<TokensView, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        let tokens = berth_db::tokens::list(&s.pool, actor.user_id).await?;
        let max_days = berth_db::settings::max_token_days(&s.pool, s.company.id).await?;
        Ok(TokensView {
            tokens: tokens.into_iter().map(Into::into).collect(),
            allowed_scopes: Scope::ALL
                .into_iter()
                .filter(|s| s.fits(&actor.roles))
                .collect(),
            max_days,
        })
    })
    .await
}

/// Makes a personal token for the caller: a name, a lifetime in days (at most the company's
/// maximum) and scopes no wider than the caller's roles (`scopes[]=read&scopes[]=…`). Field
/// errors come back as [`IssueOutcome::Invalid`]; nothing is stored then.
#[server(endpoint = "create_token", output = super::codec::JsonOut)]
pub async fn create_token(
    name: String,
    days: String,
    #[server(default)] scopes: Vec<String>,
) -> Result<IssueOutcome, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        let fields = TokenFields {
            name: &name,
            days: &days,
            scopes: &scopes,
        };
        issue(
            &s,
            actor.user_id,
            &actor.roles,
            berth_domain::token::TokenKind::Personal,
            actor.user_id,
            fields,
            addr,
        )
        .await
    })
    .await
}

/// Revokes one of the caller's own tokens; any other id (someone else's token, an unknown or an
/// already revoked one) is 404.
#[server(endpoint = "revoke_token", output = super::codec::JsonOut)]
pub async fn revoke_token(id: Uuid) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::ReadEnvironments).await?;
        if !berth_db::tokens::revoke(&s.pool, id, actor.user_id, actor.user_id).await? {
            return Err(AppError::NotFound);
        }
        if let Some(token) = berth_db::tokens::get(&s.pool, id).await? {
            record(&s, false, actor.user_id, &token, addr).await;
        }
        Ok(())
    })
    .await
}

/// Records that `by` made (`issued`) or revoked `token` in the audit trail: which token, whose,
/// its scopes and expiry; never the secret.
#[cfg(feature = "ssr")]
pub(crate) async fn record(
    s: &super::guard::Services,
    issued: bool,
    by: Uuid,
    token: &berth_db::tokens::Token,
    addr: Option<String>,
) {
    use berth_db::audit::AuthEventKind;
    let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
    let what = format!(
        "token {} '{}' ({}…) of user {}, scopes {}, expires {}",
        token.id,
        token.name,
        token.shown_prefix,
        token.user_id,
        scopes.join(","),
        Stamp::from(token.expires_at).iso,
    );
    let kind = if issued {
        AuthEventKind::TokenIssued
    } else {
        AuthEventKind::TokenRevoked
    };
    super::guard::audit(s, kind, by, addr, &what).await;
}

/// What the token forms send: a name, a lifetime in days, the scopes.
#[cfg(feature = "ssr")]
pub(crate) struct TokenFields<'a> {
    pub name: &'a str,
    pub days: &'a str,
    pub scopes: &'a [String],
}

/// Makes a token for `holder_id` (whose `holder_roles` bound its scopes) within the company's maximum, and
/// records it in the audit trail: the one path of the tokens page and the service-account page.
/// Field errors come back as [`IssueOutcome::Invalid`]; nothing is stored then. The answer is
/// the only time the secret leaves the server, and is marked not to be stored.
#[cfg(feature = "ssr")]
pub(crate) async fn issue(
    s: &super::guard::Services,
    holder_id: Uuid,
    holder_roles: &[berth_domain::Role],
    kind: berth_domain::token::TokenKind,
    by: Uuid,
    fields: TokenFields<'_>,
    addr: Option<String>,
) -> Result<IssueOutcome, AppError> {
    use secrecy::ExposeSecret;
    let max_days = berth_db::settings::max_token_days(&s.pool, s.company.id).await?;
    let new = match berth_domain::token::NewToken::parse(
        fields.name,
        fields.days,
        fields.scopes,
        holder_roles,
        max_days,
    ) {
        Ok(new) => new,
        Err(errors) => return Ok(IssueOutcome::Invalid(SpecErrors(errors))),
    };
    let issued = berth_db::tokens::issue(&s.pool, holder_id, by, kind, &new).await?;
    record(s, true, by, &issued.token, addr).await;
    super::guard::no_store();
    Ok(IssueOutcome::Issued {
        secret: issued.secret.expose_secret().to_owned(),
        token: Box::new(issued.token.into()),
    })
}
