//! Who may do what: the one place authorization is decided. Every server function and route
//! calls [`authorize`]; the UI asks the same function only to hide what would be refused.
//!
//! The rule users expect: any signed-in member (manager, admin or auditor) may read every
//! environment and its history; managers request; admins decide; auditors only read; nobody
//! decides their own request; only the requester withdraws a request.

use serde::{Deserialize, Serialize};
use std::str::FromStr;
use uuid::Uuid;

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
pub enum Role {
    Manager,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Manager, Role::Admin, Role::Auditor];
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown role '{s}'"))
    }
}

/// The signed-in person acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: Uuid,
    pub name: String,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Everything a caller can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List environments and read any environment, request and timeline.
    ReadEnvironments,
    /// Submit a request for a new business unit.
    CreateRequest,
    /// Ask for a change to an environment that exists (managers, as for a new one).
    RequestChange,
    /// Ask for an environment to be removed (managers and admins; another admin approves).
    RequestDecommission,
    /// Ask for an environment to return to its spec before its last change: a change request
    /// back to it, planned and approved like any other (managers and admins).
    RequestReturn,
    /// Approve or reject a request made by `requested_by`.
    DecideRequest { requested_by: Uuid },
    /// Withdraw a request made by `requested_by`.
    WithdrawRequest { requested_by: Uuid },
    /// Retry a failed provisioning run or cancel one in progress.
    OperateRuns,
    /// Ask for a fresh plan of a request awaiting a decision.
    RefreshPlan,
    /// Export an environment's full history (CSV/JSON) and use the auditors' view.
    ExportHistory,
    /// Manage what belongs to the whole company: service accounts, webhooks, settings (admins).
    Administer,
}

/// Why an action was refused; the text is safe to show to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Denied {
    #[error("Sign in first.")]
    NotSignedIn,
    #[error("Your account has no Berth role yet; ask an administrator for access.")]
    NoRole,
    #[error("This needs the {0} role.")]
    NeedsRole(Role),
    #[error("You cannot decide your own request; another admin has to.")]
    OwnRequest,
    #[error("Only the person who made this request may withdraw it.")]
    NotRequester,
}

/// Decides whether `actor` (None = anonymous) may perform `action`.
pub fn authorize(actor: Option<&Actor>, action: Action) -> Result<(), Denied> {
    let actor = actor.ok_or(Denied::NotSignedIn)?;
    if actor.roles.is_empty() {
        return Err(Denied::NoRole);
    }
    match action {
        Action::ReadEnvironments => Ok(()),
        Action::CreateRequest | Action::RequestChange => need(actor, Role::Manager),
        Action::RequestDecommission | Action::RequestReturn => {
            if actor.has(Role::Admin) {
                Ok(())
            } else {
                need(actor, Role::Manager)
            }
        }
        Action::DecideRequest { requested_by } => {
            need(actor, Role::Admin)?;
            if requested_by == actor.user_id {
                return Err(Denied::OwnRequest);
            }
            Ok(())
        }
        Action::WithdrawRequest { requested_by } => {
            if requested_by == actor.user_id {
                Ok(())
            } else {
                Err(Denied::NotRequester)
            }
        }
        Action::OperateRuns | Action::RefreshPlan | Action::Administer => need(actor, Role::Admin),
        Action::ExportHistory => {
            if actor.has(Role::Auditor) {
                Ok(())
            } else {
                need(actor, Role::Admin).map_err(|_| Denied::NeedsRole(Role::Auditor))
            }
        }
    }
}

fn need(actor: &Actor, role: Role) -> Result<(), Denied> {
    if actor.has(role) {
        Ok(())
    } else {
        Err(Denied::NeedsRole(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operating runs is for admins; exporting history for auditors and admins.
    #[test]
    fn run_operations_and_exports() {
        let who = |roles: &[Role]| Actor {
            user_id: Uuid::new_v4(),
            name: "me".into(),
            roles: roles.to_vec(),
        };
        // (who, actor, may operate runs, may export history)
        type Case = (
            &'static str,
            Option<Actor>,
            Result<(), Denied>,
            Result<(), Denied>,
        );
        let cases: [Case; 6] = [
            (
                "anonymous",
                None,
                Err(Denied::NotSignedIn),
                Err(Denied::NotSignedIn),
            ),
            (
                "no role",
                Some(who(&[])),
                Err(Denied::NoRole),
                Err(Denied::NoRole),
            ),
            (
                "manager",
                Some(who(&[Role::Manager])),
                Err(Denied::NeedsRole(Role::Admin)),
                Err(Denied::NeedsRole(Role::Auditor)),
            ),
            ("admin", Some(who(&[Role::Admin])), Ok(()), Ok(())),
            (
                "auditor",
                Some(who(&[Role::Auditor])),
                Err(Denied::NeedsRole(Role::Admin)),
                Ok(()),
            ),
            (
                "manager+admin",
                Some(who(&[Role::Manager, Role::Admin])),
                Ok(()),
                Ok(()),
            ),
        ];
        for (name, actor, operate, export) in cases {
            assert_eq!(
                authorize(actor.as_ref(), Action::OperateRuns),
                operate,
                "{name} operate"
            );
            assert_eq!(
                authorize(actor.as_ref(), Action::ExportHistory),
                export,
                "{name} export"
            );
        }
    }

    /// Changes are for managers; a decommission for managers and admins.
    #[test]
    fn lifecycle_requests() {
        let who = |roles: &[Role]| Actor {
            user_id: Uuid::new_v4(),
            name: "me".into(),
            roles: roles.to_vec(),
        };
        let manager = who(&[Role::Manager]);
        let admin = who(&[Role::Admin]);
        let auditor = who(&[Role::Auditor]);
        assert_eq!(authorize(Some(&manager), Action::RequestChange), Ok(()));
        assert_eq!(
            authorize(Some(&admin), Action::RequestChange),
            Err(Denied::NeedsRole(Role::Manager))
        );
        assert_eq!(
            authorize(Some(&manager), Action::RequestDecommission),
            Ok(())
        );
        assert_eq!(authorize(Some(&admin), Action::RequestDecommission), Ok(()));
        assert_eq!(authorize(Some(&admin), Action::RequestReturn), Ok(()));
        assert_eq!(authorize(Some(&manager), Action::RequestReturn), Ok(()));
        assert_eq!(
            authorize(Some(&auditor), Action::RequestReturn),
            Err(Denied::NeedsRole(Role::Manager))
        );
        assert_eq!(
            authorize(Some(&auditor), Action::RequestDecommission),
            Err(Denied::NeedsRole(Role::Manager))
        );
        assert_eq!(
            authorize(None, Action::RequestDecommission),
            Err(Denied::NotSignedIn)
        );
    }

    /// Every role (and anonymous, and no-role) × every action, on own and others' requests.
    #[test]
    fn role_action_matrix() {
        let me = Uuid::new_v4();
        let other = Uuid::new_v4();
        let who = |roles: &[Role]| Actor {
            user_id: me,
            name: "me".into(),
            roles: roles.to_vec(),
        };
        let actions = [
            ("read", Action::ReadEnvironments),
            ("create", Action::CreateRequest),
            (
                "decide-other",
                Action::DecideRequest {
                    requested_by: other,
                },
            ),
            ("decide-own", Action::DecideRequest { requested_by: me }),
            ("withdraw-own", Action::WithdrawRequest { requested_by: me }),
            (
                "withdraw-other",
                Action::WithdrawRequest {
                    requested_by: other,
                },
            ),
        ];
        // (who, [read, create, decide-other, decide-own, withdraw-own, withdraw-other])
        type Row = (&'static str, Option<Actor>, [Result<(), Denied>; 6]);
        let table: [Row; 6] = [
            ("anonymous", None, [Err(Denied::NotSignedIn); 6]),
            ("no role", Some(who(&[])), [Err(Denied::NoRole); 6]),
            (
                "manager",
                Some(who(&[Role::Manager])),
                [
                    Ok(()),
                    Ok(()),
                    Err(Denied::NeedsRole(Role::Admin)),
                    Err(Denied::NeedsRole(Role::Admin)),
                    Ok(()),
                    Err(Denied::NotRequester),
                ],
            ),
            (
                "admin",
                Some(who(&[Role::Admin])),
                [
                    Ok(()),
                    Err(Denied::NeedsRole(Role::Manager)),
                    Ok(()),
                    Err(Denied::OwnRequest),
                    Ok(()),
                    Err(Denied::NotRequester),
                ],
            ),
            (
                "auditor",
                Some(who(&[Role::Auditor])),
                [
                    Ok(()),
                    Err(Denied::NeedsRole(Role::Manager)),
                    Err(Denied::NeedsRole(Role::Admin)),
                    Err(Denied::NeedsRole(Role::Admin)),
                    Ok(()),
                    Err(Denied::NotRequester),
                ],
            ),
            (
                "manager+admin",
                Some(who(&[Role::Manager, Role::Admin])),
                [
                    Ok(()),
                    Ok(()),
                    Ok(()),
                    Err(Denied::OwnRequest),
                    Ok(()),
                    Err(Denied::NotRequester),
                ],
            ),
        ];
        for (label, actor, expected) in table {
            for ((name, action), want) in actions.iter().zip(expected) {
                assert_eq!(authorize(actor.as_ref(), *action), want, "{label} × {name}");
            }
        }
    }
}
