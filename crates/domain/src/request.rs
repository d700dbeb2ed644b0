//! A request for a business unit and the state machine it moves through.
//!
//! `submitted → approved | rejected | withdrawn`, then (with the pipeline)
//! `approved → provisioning → ready | failed`, `failed → provisioning` (retry).
//! Decisions can only be made from a [`Submitted`] proof, so an illegal transition is not
//! expressible; the database refuses the same transitions with a trigger (see `migrations/`).

use serde::{Deserialize, Serialize};
use std::str::FromStr;
use uuid::Uuid;

use crate::policy::{authorize, Action, Actor, Denied};

/// The set of apps an environment gets (by name; the parsed manifest is
/// `berth_blueprint::Blueprint`). Only `insight` exists today.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
pub enum BlueprintName {
    Insight,
}

impl BlueprintName {
    pub const ALL: [BlueprintName; 1] = [BlueprintName::Insight];
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn label(self) -> &'static str {
        match self {
            BlueprintName::Insight => "Insight (foundation, certs, InfluxDB, DSM)",
        }
    }
}

impl FromStr for BlueprintName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        crate::variant_named(s)
            .ok_or_else(|| format!("Unknown blueprint '{s}'; choose one from the list."))
    }
}

/// How much capacity the unit's namespace gets: [`Size::quota`], which the label repeats (a test
/// keeps them equal).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    pub const ALL: [Size; 3] = [Size::Small, Size::Medium, Size::Large];
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn label(self) -> &'static str {
        match self {
            Size::Small => "Small (4 CPU, 8 GiB)",
            Size::Medium => "Medium (8 CPU, 16 GiB)",
            Size::Large => "Large (16 CPU, 32 GiB)",
        }
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        crate::variant_named(s)
            .ok_or_else(|| format!("Unknown size '{s}'; choose small, medium or large."))
    }
}

/// Where a request stands. Stored as text; the database checks the same transitions.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    Submitted,
    Approved,
    Rejected,
    Withdrawn,
    Provisioning,
    Ready,
    Failed,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Submitted,
        RequestStatus::Approved,
        RequestStatus::Rejected,
        RequestStatus::Withdrawn,
        RequestStatus::Provisioning,
        RequestStatus::Ready,
        RequestStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The transition table; `migrations/` holds the same table for the database trigger.
    /// Back to `Submitted` is the worker's "needs re-approval": the plan it was about to execute
    /// is no longer the one approved, so the request awaits a decision on the new plan.
    pub fn can_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (Submitted, Approved | Rejected | Withdrawn)
                | (Approved, Provisioning | Submitted)
                | (Provisioning, Ready | Failed | Submitted)
                | (Failed, Provisioning | Submitted)
        )
    }

    /// No further change is possible.
    pub fn is_final(self) -> bool {
        matches!(self, RequestStatus::Rejected | RequestStatus::Withdrawn)
    }
}

impl FromStr for RequestStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown request status '{s}'"))
    }
}

/// Why a decision could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TransitionError {
    #[error("this request is {0}, so it can no longer be decided or withdrawn")]
    NotSubmitted(RequestStatus),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    InvalidInput(String),
}

/// A reviewer's free-text note; a rejection must carry one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note(String);

impl Note {
    pub const MAX_CHARS: usize = 1000;
    pub fn parse(input: &str) -> Result<Option<Self>, String> {
        let s = input.trim();
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        Ok((!s.is_empty()).then(|| Self(s.to_owned())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a reviewer decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Approve { note: Option<Note> },
    Reject { reason: Note },
}

impl Decision {
    /// Parses the decision form: `approve` with an optional note, or `reject` with a reason.
    pub fn parse(decision: &str, note: &str) -> Result<Self, TransitionError> {
        let note = Note::parse(note).map_err(TransitionError::InvalidInput)?;
        match decision {
            "approve" => Ok(Decision::Approve { note }),
            "reject" => note
                .map(|reason| Decision::Reject { reason })
                .ok_or_else(|| TransitionError::InvalidInput("A rejection needs a reason.".into())),
            other => Err(TransitionError::InvalidInput(format!(
                "unknown decision '{other}'"
            ))),
        }
    }
    pub fn target(&self) -> RequestStatus {
        match self {
            Decision::Approve { .. } => RequestStatus::Approved,
            Decision::Reject { .. } => RequestStatus::Rejected,
        }
    }
    pub fn note(&self) -> Option<&str> {
        match self {
            Decision::Approve { note } => note.as_ref().map(Note::as_str),
            Decision::Reject { reason } => Some(reason.as_str()),
        }
    }
}

/// Proof that a request is awaiting a decision. Only obtainable from a request whose status is
/// `submitted`; consumed by a decision or a withdrawal.
#[derive(Debug)]
pub struct Submitted {
    request_id: Uuid,
    requested_by: Uuid,
}

/// A checked decision, ready to be stored.
#[derive(Debug)]
pub struct Decided {
    pub request_id: Uuid,
    pub decided_by: Uuid,
    pub decision: Decision,
}

/// A checked withdrawal, ready to be stored.
#[derive(Debug)]
pub struct Withdrawn {
    pub request_id: Uuid,
    pub withdrawn_by: Uuid,
}

impl Submitted {
    pub fn new(
        request_id: Uuid,
        requested_by: Uuid,
        status: RequestStatus,
    ) -> Result<Self, TransitionError> {
        match status {
            RequestStatus::Submitted => Ok(Self {
                request_id,
                requested_by,
            }),
            other => Err(TransitionError::NotSubmitted(other)),
        }
    }

    /// Approves or rejects, refusing anyone the policy refuses (including the requester).
    pub fn decide(self, by: &Actor, decision: Decision) -> Result<Decided, TransitionError> {
        authorize(
            Some(by),
            Action::DecideRequest {
                requested_by: self.requested_by,
            },
        )?;
        Ok(Decided {
            request_id: self.request_id,
            decided_by: by.user_id,
            decision,
        })
    }

    /// Withdraws the request; only its requester may.
    pub fn withdraw(self, by: &Actor) -> Result<Withdrawn, TransitionError> {
        authorize(
            Some(by),
            Action::WithdrawRequest {
                requested_by: self.requested_by,
            },
        )?;
        Ok(Withdrawn {
            request_id: self.request_id,
            withdrawn_by: by.user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;
    use strum::IntoEnumIterator;

    fn actor(roles: &[Role]) -> Actor {
        Actor {
            user_id: Uuid::new_v4(),
            name: "x".into(),
            roles: roles.to_vec(),
            token_id: None,
        }
    }

    #[test]
    fn transition_table() {
        use RequestStatus::*;
        let allowed = [
            (Submitted, Approved),
            (Submitted, Rejected),
            (Submitted, Withdrawn),
            (Approved, Provisioning),
            (Approved, Submitted),
            (Provisioning, Ready),
            (Provisioning, Failed),
            (Provisioning, Submitted),
            (Failed, Provisioning),
            (Failed, Submitted),
        ];
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from}→{to}"
                );
            }
        }
    }

    #[test]
    fn only_submitted_requests_can_be_decided() {
        for st in RequestStatus::ALL {
            let r = Submitted::new(Uuid::new_v4(), Uuid::new_v4(), st);
            assert_eq!(r.is_ok(), st == RequestStatus::Submitted);
        }
    }

    #[test]
    fn nobody_decides_their_own_request() {
        let admin = actor(&[Role::Admin, Role::Manager]);
        let own = Submitted::new(Uuid::new_v4(), admin.user_id, RequestStatus::Submitted).unwrap();
        let err = own
            .decide(&admin, Decision::Approve { note: None })
            .unwrap_err();
        assert_eq!(err, TransitionError::Denied(Denied::OwnRequest));
        let other =
            Submitted::new(Uuid::new_v4(), Uuid::new_v4(), RequestStatus::Submitted).unwrap();
        let d = other
            .decide(&admin, Decision::Approve { note: None })
            .unwrap();
        assert_eq!(d.decided_by, admin.user_id);
    }

    #[test]
    fn rejection_needs_a_reason() {
        assert!(Decision::parse("reject", "   ").is_err());
        assert_eq!(
            Decision::parse("reject", " too big ").unwrap().note(),
            Some("too big")
        );
        assert_eq!(Decision::parse("approve", "").unwrap().note(), None);
        assert!(Decision::parse("maybe", "").is_err());
    }

    #[test]
    fn the_lists_hold_every_variant() {
        assert_eq!(
            RequestStatus::ALL.to_vec(),
            RequestStatus::iter().collect::<Vec<_>>()
        );
        assert_eq!(Size::ALL.to_vec(), Size::iter().collect::<Vec<_>>());
        assert_eq!(
            BlueprintName::ALL.to_vec(),
            BlueprintName::iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn parse_round_trips() {
        for st in RequestStatus::ALL {
            assert_eq!(st.as_str().parse::<RequestStatus>().unwrap(), st);
        }
        assert_eq!(
            "insight".parse::<BlueprintName>().unwrap(),
            BlueprintName::Insight
        );
        for s in Size::ALL {
            assert_eq!(s.as_str().parse::<Size>().unwrap(), s);
        }
    }
}
