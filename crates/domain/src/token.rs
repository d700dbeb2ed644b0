//! Machine credentials: personal access tokens and service-account tokens. What a token may do
//! is the intersection of its holder's roles (checked by [`crate::policy::authorize`] on every
//! call, so a removed role takes effect at once) and the scopes written on it when it was made.

use std::{collections::BTreeSet, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{
    policy::{Action, Role},
    unit::FieldError,
};

/// What a token may be used for; each action needs exactly one scope.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Read environments, requests, plans, runs and history.
    Read,
    /// Make, change and withdraw requests.
    Request,
    /// Approve or reject other people's requests.
    Decide,
    /// Retry and cancel runs, refresh plans; with the admin role, administer.
    Operate,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Request, Scope::Decide, Scope::Operate];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The scope a token needs for `action`.
    pub fn needed_for(action: Action) -> Scope {
        match action {
            Action::ReadEnvironments | Action::ExportHistory => Scope::Read,
            Action::CreateRequest
            | Action::RequestChange
            | Action::RequestDecommission
            | Action::RequestReturn
            | Action::WithdrawRequest { .. } => Scope::Request,
            Action::DecideRequest { .. } => Scope::Decide,
            Action::OperateRuns | Action::RefreshPlan | Action::Administer => Scope::Operate,
        }
    }

    /// Whether someone holding `roles` may put this scope on a token: never wider than what
    /// the roles allow (reading is every member's; requesting is managers' and admins';
    /// deciding and operating are admins').
    pub fn fits(self, roles: &[Role]) -> bool {
        match self {
            Scope::Read => !roles.is_empty(),
            Scope::Request => roles.contains(&Role::Manager) || roles.contains(&Role::Admin),
            Scope::Decide | Scope::Operate => roles.contains(&Role::Admin),
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown scope '{s}'"))
    }
}

/// Whose token it is: a person's own, or a service account's (made by an admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Personal,
    ServiceAccount,
}

impl TokenKind {
    /// The recognisable start of every secret of this kind (secret scanners key on it).
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Personal => "berth_pat_",
            TokenKind::ServiceAccount => "berth_sat_",
        }
    }
}

/// Bytes of randomness in a token's secret (256 bits), written as lowercase hex after the prefix.
pub const SECRET_BYTES: usize = 32;

/// A token's secret as presented by a caller, checked for shape only (prefix and 64 hex
/// digits), so a malformed bearer is refused before any lookup. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedSecret(String);

impl PresentedSecret {
    pub fn parse(s: &str) -> Option<(TokenKind, PresentedSecret)> {
        [TokenKind::Personal, TokenKind::ServiceAccount]
            .into_iter()
            .find_map(|kind| {
                let hex = s.strip_prefix(kind.prefix())?;
                (hex.len() == SECRET_BYTES * 2
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| (kind, PresentedSecret(s.to_owned())))
            })
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PresentedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedSecret(…)")
    }
}

/// The longest a token may live unless an admin setting allows more.
pub const DEFAULT_MAX_TOKEN_DAYS: u32 = 90;

/// A token asked for in a form or an API call, checked: a name, a lifetime in days within the
/// allowed maximum, and one or more scopes that the holder's roles allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub days: u32,
    pub scopes: BTreeSet<Scope>,
}

impl NewToken {
    /// Parses the raw fields; every problem is reported against its field.
    pub fn parse(
        name: &str,
        days: &str,
        scopes: &[String],
        roles: &[Role],
        max_days: u32,
    ) -> Result<NewToken, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "name",
                "Give the token a name of 1 to 64 characters (what it is for).",
            ));
        }
        let days = match days.trim().parse::<u32>() {
            Ok(d) if (1..=max_days).contains(&d) => d,
            _ => {
                errors.push(FieldError::new(
                    "days",
                    format!("A token lives from 1 to {max_days} days."),
                ));
                0
            }
        };
        let mut parsed = BTreeSet::new();
        for s in scopes {
            match s.parse::<Scope>() {
                Ok(scope) if scope.fits(roles) => {
                    parsed.insert(scope);
                }
                Ok(scope) => errors.push(FieldError::new(
                    "scopes",
                    format!("Your roles do not allow the {scope} scope."),
                )),
                Err(e) => errors.push(FieldError::new("scopes", e)),
            }
        }
        if parsed.is_empty() && !errors.iter().any(|e| e.field == "scopes") {
            errors.push(FieldError::new("scopes", "Choose at least one scope."));
        }
        if errors.is_empty() {
            Ok(NewToken {
                name: name.to_owned(),
                days,
                scopes: parsed,
            })
        } else {
            Err(errors)
        }
    }
}

/// The most an admin setting may allow: a token lives a year at most, whatever the company says.
pub const TOKEN_DAYS_CEILING: u32 = 365;

/// The company's maximum token lifetime as an admin types it: whole days, 1 to
/// [`TOKEN_DAYS_CEILING`]. The error names the field `max_token_days`.
pub fn parse_max_token_days(days: &str) -> Result<u32, FieldError> {
    match days.trim().parse::<u32>() {
        Ok(d) if (1..=TOKEN_DAYS_CEILING).contains(&d) => Ok(d),
        _ => Err(FieldError::new(
            "max_token_days",
            format!("Allow from 1 to {TOKEN_DAYS_CEILING} days."),
        )),
    }
}

/// A service account as an admin asks for it: a name people recognise and the roles it acts
/// with (at least one; the same roles a person can hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceAccount {
    pub name: String,
    pub roles: Vec<Role>,
}

impl NewServiceAccount {
    /// Parses the raw fields (`name`, `roles`); every problem is reported against its field.
    pub fn parse(name: &str, roles: &[String]) -> Result<NewServiceAccount, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() || name.chars().count() > 64 {
            errors.push(FieldError::new(
                "name",
                "Give the service account a name of 1 to 64 characters (what uses it).",
            ));
        }
        let mut parsed = BTreeSet::new();
        for r in roles {
            match r.parse::<Role>() {
                Ok(role) => {
                    parsed.insert(role);
                }
                Err(e) => errors.push(FieldError::new("roles", e)),
            }
        }
        if parsed.is_empty() && !errors.iter().any(|e| e.field == "roles") {
            errors.push(FieldError::new("roles", "Choose at least one role."));
        }
        if errors.is_empty() {
            Ok(NewServiceAccount {
                name,
                roles: parsed.into_iter().collect(),
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_needs_a_scope_its_roles_can_hold() {
        use uuid::Uuid;
        let id = Uuid::nil();
        for (action, scope, roles) in [
            (Action::ReadEnvironments, Scope::Read, vec![Role::Auditor]),
            (Action::ExportHistory, Scope::Read, vec![Role::Auditor]),
            (Action::CreateRequest, Scope::Request, vec![Role::Manager]),
            (
                Action::RequestDecommission,
                Scope::Request,
                vec![Role::Admin],
            ),
            (
                Action::WithdrawRequest { requested_by: id },
                Scope::Request,
                vec![Role::Manager],
            ),
            (
                Action::DecideRequest { requested_by: id },
                Scope::Decide,
                vec![Role::Admin],
            ),
            (Action::OperateRuns, Scope::Operate, vec![Role::Admin]),
            (Action::RefreshPlan, Scope::Operate, vec![Role::Admin]),
        ] {
            assert_eq!(Scope::needed_for(action), scope, "{action:?}");
            assert!(scope.fits(&roles), "{action:?}");
        }
        assert!(!Scope::Decide.fits(&[Role::Manager, Role::Auditor]));
        assert!(!Scope::Request.fits(&[Role::Auditor]));
        assert!(!Scope::Read.fits(&[]));
    }

    #[test]
    fn secrets_are_recognised_by_shape_only() {
        let hex = "0123456789abcdef".repeat(4);
        let (kind, s) = PresentedSecret::parse(&format!("berth_pat_{hex}")).unwrap();
        assert_eq!(kind, TokenKind::Personal);
        assert_eq!(format!("{s:?}"), "PresentedSecret(…)");
        assert_eq!(
            PresentedSecret::parse(&format!("berth_sat_{hex}")).map(|p| p.0),
            Some(TokenKind::ServiceAccount)
        );
        for bad in [
            format!("berth_pat_{}", &hex[1..]),
            format!("berth_pat_{}", hex.to_uppercase()),
            format!("berth_xyz_{hex}"),
            hex.clone(),
            String::new(),
        ] {
            assert!(PresentedSecret::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_new_token_is_no_wider_than_its_holders_roles() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t =
            NewToken::parse(" ci ", "30", &s(&["read", "request"]), &[Role::Manager], 90).unwrap();
        assert_eq!(t.name, "ci");
        assert_eq!(t.scopes, BTreeSet::from([Scope::Read, Scope::Request]));
        let e =
            NewToken::parse("", "91", &s(&["decide", "fly"]), &[Role::Manager], 90).unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "days", "scopes", "scopes"]);
        let e = NewToken::parse("x", "1", &[], &[Role::Admin], 90).unwrap_err();
        assert_eq!(e[0].message, "Choose at least one scope.");
        assert!(NewToken::parse("x", "365", &s(&["read"]), &[Role::Auditor], 365).is_ok());
    }

    #[test]
    fn the_company_maximum_stays_within_a_year() {
        assert_eq!(parse_max_token_days(" 180 "), Ok(180));
        assert_eq!(parse_max_token_days("365"), Ok(365));
        for bad in ["0", "366", "-1", "ninety", ""] {
            let e = parse_max_token_days(bad).unwrap_err();
            assert_eq!(e.field, "max_token_days", "{bad}");
        }
    }

    #[test]
    fn a_service_account_has_a_name_and_a_role() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a =
            NewServiceAccount::parse("  CI   pipeline ", &s(&["manager", "auditor", "manager"]))
                .unwrap();
        assert_eq!(a.name, "CI pipeline");
        assert_eq!(a.roles, [Role::Manager, Role::Auditor]);
        let e = NewServiceAccount::parse(" ", &s(&["pilot"])).unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "roles"]);
        let e = NewServiceAccount::parse("x", &[]).unwrap_err();
        assert_eq!(e[0].message, "Choose at least one role.");
        assert!(NewServiceAccount::parse(&"x".repeat(65), &s(&["admin"])).is_err());
    }
}
