//! Company-wide administration (admins only, `Action::Administer`): service accounts, their
//! tokens, and the company's settings. Every change is recorded in the audit trail.

use berth_domain::{token::Scope, Role, SpecErrors};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    tokens::{IssueOutcome, TokenView},
    Stamp,
};
use crate::error::AppError;

/// A service account with its tokens, as the admins' page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountView {
    pub id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
    pub created_by: String,
    pub created: Stamp,
    pub disabled: Option<Stamp>,
    /// The scopes its roles allow on a token.
    pub allowed_scopes: Vec<Scope>,
    pub tokens: Vec<TokenView>,
}

/// The admins' page: the company's settings and every service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub max_token_days: u32,
    /// The most the setting may be (a year).
    pub max_token_days_ceiling: u32,
    /// Who changed the settings last, and when (none: the defaults).
    pub settings_changed: Option<(String, Stamp)>,
    pub accounts: Vec<ServiceAccountView>,
}

/// The outcome of a form that stores something or reports its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FormOutcome {
    Saved,
    Invalid(SpecErrors),
}

#[server(endpoint = "admin_overview", output = super::codec::JsonOut)]
pub async fn admin_overview() -> Result<AdminView, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        guard::require(berth_domain::Action::Administer).await?;
        let settings = berth_db::settings::get(&s.pool, s.company.id).await?;
        let mut accounts = Vec::new();
        for a in berth_db::tokens::list_service_accounts(&s.pool).await? {
            let tokens = berth_db::tokens::list(&s.pool, a.user.id).await?;
            accounts.push(ServiceAccountView {
                id: a.user.id,
                allowed_scopes: Scope::ALL
                    .into_iter()
                    .filter(|s| s.fits(&a.user.roles))
                    .collect(),
                name: a.user.display_name,
                roles: a.user.roles,
                created_by: a.created_by,
                created: a.created_at.into(),
                disabled: a.disabled_at.map(Into::into),
                tokens: tokens.into_iter().map(Into::into).collect(),
            });
        }
        Ok(AdminView {
            max_token_days: settings.max_token_days,
            max_token_days_ceiling: berth_domain::token::TOKEN_DAYS_CEILING,
            settings_changed: settings
                .updated_by
                .zip(settings.updated_at.map(Stamp::from)),
            accounts,
        })
    })
    .await
}

/// Makes a service account: a name (unique among service accounts) and its roles
/// (`roles[]=manager&…`). It never signs in; it acts through the tokens an admin issues for it.
#[server(endpoint = "create_service_account", output = super::codec::JsonOut)]
pub async fn create_service_account(
    name: String,
    #[server(default)] roles: Vec<String>,
) -> Result<FormOutcome, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        let new = match berth_domain::token::NewServiceAccount::parse(&name, &roles) {
            Ok(new) => new,
            Err(errors) => return Ok(FormOutcome::Invalid(SpecErrors(errors))),
        };
        let account = match berth_db::tokens::create_service_account(
            &s.pool,
            &new.name,
            &new.roles,
            actor.user_id,
        )
        .await
        {
            Ok(account) => account,
            Err(berth_db::DbError::Taken { field, message }) => {
                let mut errors = SpecErrors::default();
                errors.push(field, message);
                return Ok(FormOutcome::Invalid(errors));
            }
            Err(e) => return Err(e.into()),
        };
        let roles: Vec<&str> = account.roles.iter().map(|r| r.as_str()).collect();
        let what = format!(
            "service account {} '{}', roles {}",
            account.id,
            account.display_name,
            roles.join(",")
        );
        guard::audit(
            &s,
            berth_db::audit::AuthEventKind::ServiceAccountCreated,
            actor.user_id,
            addr,
            &what,
        )
        .await;
        Ok(FormOutcome::Saved)
    })
    .await
}

/// What every admin call on one service account starts with: the caller allowed to
/// administer, where the call came from, and the account (404 unless it is one).
#[cfg(feature = "ssr")]
struct AccountCall {
    s: super::guard::Services,
    addr: Option<String>,
    actor: berth_domain::Actor,
    sa: berth_db::tokens::ServiceAccount,
}

#[cfg(feature = "ssr")]
impl AccountCall {
    async fn for_account(account: Uuid) -> Result<Self, AppError> {
        use super::guard;
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        let sa = berth_db::tokens::service_account(&s.pool, account)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(Self { s, addr, actor, sa })
    }
}

/// Issues a token for a service account (kind `berth_sat_`), within the company's maximum and
/// the account's roles; refused (409) while the account is disabled.
#[server(endpoint = "issue_service_token", output = super::codec::JsonOut)]
pub async fn issue_service_token(
    account: Uuid,
    name: String,
    days: String,
    #[server(default)] scopes: Vec<String>,
) -> Result<IssueOutcome, AppError> {
    use super::guard;
    guard::respond(async move {
        let AccountCall { s, addr, actor, sa } = AccountCall::for_account(account).await?;
        if sa.disabled_at.is_some() {
            return Err(AppError::Conflict(
                "This service account is disabled; enable it before issuing a token.".into(),
            ));
        }
        let fields = super::tokens::TokenFields {
            name: &name,
            days: &days,
            scopes: &scopes,
        };
        super::tokens::issue(
            &s,
            sa.user.id,
            &sa.user.roles,
            berth_domain::token::TokenKind::ServiceAccount,
            actor.user_id,
            fields,
            addr,
        )
        .await
    })
    .await
}

/// Revokes a token of a service account; 404 unless `token` is a live token of `account` and
/// `account` is a service account (a person's tokens are theirs to revoke).
#[server(endpoint = "revoke_service_token", output = super::codec::JsonOut)]
pub async fn revoke_service_token(account: Uuid, token: Uuid) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        let AccountCall { s, addr, actor, sa } = AccountCall::for_account(account).await?;
        if !berth_db::tokens::revoke(&s.pool, token, sa.user.id, actor.user_id).await? {
            return Err(AppError::NotFound);
        }
        if let Some(t) = berth_db::tokens::get(&s.pool, token).await? {
            super::tokens::record(&s, false, actor.user_id, &t, addr).await;
        }
        Ok(())
    })
    .await
}

/// Disables (`disabled = true`) a service account, so its tokens are refused from the next
/// call on, or enables it again.
#[server(endpoint = "set_service_account_disabled", output = super::codec::JsonOut)]
pub async fn set_service_account_disabled(account: Uuid, disabled: bool) -> Result<(), AppError> {
    use super::guard;
    guard::respond(async move {
        use berth_db::audit::AuthEventKind;
        let AccountCall { s, addr, actor, sa } = AccountCall::for_account(account).await?;
        if berth_db::tokens::set_service_account_disabled(&s.pool, sa.user.id, disabled).await? {
            let (kind, verb) = if disabled {
                (AuthEventKind::ServiceAccountDisabled, "disabled")
            } else {
                (AuthEventKind::ServiceAccountEnabled, "enabled")
            };
            let what = format!(
                "service account {} '{}' {verb}",
                sa.user.id, sa.user.display_name
            );
            guard::audit(&s, kind, actor.user_id, addr, &what).await;
        }
        Ok(())
    })
    .await
}

/// Sets the longest a new token may live, in days (1 to a year). Tokens made earlier keep
/// their expiry. The change and its audit record are stored together.
#[server(endpoint = "set_max_token_days", output = super::codec::JsonOut)]
pub async fn set_max_token_days(max_token_days: String) -> Result<FormOutcome, AppError> {
    use super::guard;
    guard::respond(async move {
        let s = guard::services()?;
        let addr = guard::source_addr().await;
        let actor = guard::require(berth_domain::Action::Administer).await?;
        let days = match berth_domain::token::parse_max_token_days(&max_token_days) {
            Ok(days) => days,
            Err(e) => return Ok(FormOutcome::Invalid(SpecErrors(vec![e]))),
        };
        let previous = berth_db::settings::set_max_token_days(
            &s.pool,
            s.company.id,
            days,
            actor.user_id,
            addr,
        )
        .await?;
        tracing::info!(
            user_id = %actor.user_id,
            previous,
            days,
            "company setting changed: max_token_days"
        );
        Ok(FormOutcome::Saved)
    })
    .await
}
