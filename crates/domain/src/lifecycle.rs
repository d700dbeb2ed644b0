//! An environment's whole life: what a request asks for (create, change, decommission), the
//! environment's own state machine beside its requests', and the rules of a change (what may
//! change, and that it changes something) and of a decommission (the typed confirmation).
//!
//! An environment's status follows its latest request, through [`EnvironmentStatus::follows`]:
//! a create request's status is the environment's (`submitted` … `ready`); a change shows
//! `changing` while its run is live and leaves the environment `ready` when it succeeds or its
//! failure was rolled back; a decommission shows `decommissioning`, then `decommissioned`.
//! The database holds the same table in a trigger (see `migrations/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use std::str::FromStr;

use crate::request::{RequestStatus, Size};
use crate::unit::{Description, OwnerContact, RequestSpec, SpecErrors, UnitName};

/// What a request asks for.
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
pub enum RequestKind {
    /// A new business unit.
    Create,
    /// A new specification for a unit that exists.
    Change,
    /// Remove everything of the unit, keeping only what its retention keeps.
    Decommission,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    /// How people call it: "new environment", "change", "decommission".
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Create => "new environment",
            RequestKind::Change => "change",
            RequestKind::Decommission => "decommission",
        }
    }
}

impl FromStr for RequestKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown request kind '{s}'"))
    }
}

/// Where an environment stands.
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
pub enum EnvironmentStatus {
    Submitted,
    Approved,
    Rejected,
    Withdrawn,
    Provisioning,
    Ready,
    Failed,
    /// A change run is live.
    Changing,
    /// A decommission run is live.
    Decommissioning,
    /// Removed, and proven removed; the name and slug are free again.
    Decommissioned,
}

impl EnvironmentStatus {
    pub const ALL: [EnvironmentStatus; 10] = [
        EnvironmentStatus::Submitted,
        EnvironmentStatus::Approved,
        EnvironmentStatus::Rejected,
        EnvironmentStatus::Withdrawn,
        EnvironmentStatus::Provisioning,
        EnvironmentStatus::Ready,
        EnvironmentStatus::Failed,
        EnvironmentStatus::Changing,
        EnvironmentStatus::Decommissioning,
        EnvironmentStatus::Decommissioned,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The transition table; `migrations/` holds the same table for the database trigger.
    pub fn can_become(self, next: EnvironmentStatus) -> bool {
        use EnvironmentStatus::*;
        matches!(
            (self, next),
            (Submitted, Approved | Rejected | Withdrawn)
                | (Approved, Provisioning | Submitted)
                | (Provisioning, Ready | Failed | Submitted)
                | (
                    Failed,
                    Provisioning | Submitted | Changing | Decommissioning
                )
                | (Ready, Changing | Decommissioning)
                | (Changing, Ready | Failed)
                | (Decommissioning, Decommissioned | Failed | Ready)
        )
    }

    /// What the environment shows when its request of `kind` becomes `request`. `rolled_back`:
    /// a failed change whose run put every app back (the environment runs its previous spec).
    pub fn follows(
        self,
        kind: RequestKind,
        request: RequestStatus,
        rolled_back: bool,
    ) -> EnvironmentStatus {
        use EnvironmentStatus as E;
        use RequestStatus as R;
        match kind {
            RequestKind::Create => match request {
                R::Submitted => E::Submitted,
                R::Approved => E::Approved,
                R::Rejected => E::Rejected,
                R::Withdrawn => E::Withdrawn,
                R::Provisioning => E::Provisioning,
                R::Ready => E::Ready,
                R::Failed => E::Failed,
            },
            RequestKind::Change => match request {
                R::Provisioning => E::Changing,
                R::Ready => E::Ready,
                R::Failed if rolled_back => E::Ready,
                R::Failed => E::Failed,
                // Back to awaiting a decision (the approved plan went stale): the run stopped
                // before the step that would have differed from the plan.
                R::Submitted if self == E::Changing => E::Ready,
                _ => self,
            },
            RequestKind::Decommission => match request {
                R::Provisioning => E::Decommissioning,
                R::Ready => E::Decommissioned,
                R::Failed => E::Failed,
                R::Submitted if self == E::Decommissioning => E::Ready,
                _ => self,
            },
        }
    }

    /// The environment exists (in the cluster or on its way there): a change or a decommission
    /// may be asked for when it is [`EnvironmentStatus::accepts_requests`].
    pub fn accepts_requests(self) -> bool {
        matches!(self, EnvironmentStatus::Ready | EnvironmentStatus::Failed)
    }

    /// Its name and slug are taken (the database's unique indexes hold the same list).
    pub fn holds_name(self) -> bool {
        !matches!(
            self,
            EnvironmentStatus::Rejected
                | EnvironmentStatus::Withdrawn
                | EnvironmentStatus::Decommissioned
        )
    }
}

impl FromStr for EnvironmentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::variant_named(s).ok_or_else(|| format!("unknown environment status '{s}'"))
    }
}

/// Per app, the values a manager set where the blueprint declares them changeable
/// (`{"influxdb": {"retention": "30d"}}`). Checked against the blueprint's JSON Schema by the
/// blueprint crate; here only carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppOverrides(pub BTreeMap<String, BTreeMap<String, serde_json::Value>>);

impl AppOverrides {
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }
    /// Drops apps without any value, so that `{}` and `{"dsm": {}}` compare equal.
    pub fn normalized(mut self) -> Self {
        self.0.retain(|_, v| !v.is_empty());
        self
    }
    pub fn get(&self, app: &str, key: &str) -> Option<&serde_json::Value> {
        self.0.get(app).and_then(|m| m.get(key))
    }
}

/// A blueprint version as published (`1.2.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlueprintVersion(String);

impl BlueprintVersion {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let parts: Vec<&str> = s.split('.').collect();
        let ok = parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 6
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p.len() == 1 || !p.starts_with('0'))
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("'{s}' is not a version such as 1.2.0."))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlueprintVersion {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<BlueprintVersion> for String {
    fn from(value: BlueprintVersion) -> Self {
        value.0
    }
}
impl std::fmt::Display for BlueprintVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The raw fields of a change form. The name and slug are sent back as shown so that an attempt
/// to change them is refused by name rather than ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeForm {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: String,
    pub owner_contact: String,
    pub size: String,
    /// Empty: keep the environment's version.
    pub blueprint_version: String,
    pub overrides: AppOverrides,
}

/// The message of a change that would change nothing.
pub const NOTHING_WOULD_CHANGE: &str = "Nothing would change: edit at least one field.";

impl ChangeForm {
    /// The new specification, from the environment's `current` one: every field error at once,
    /// the name and slug unchanged, and something different. The overrides are taken as given;
    /// the caller checks them against the blueprint's schema (`berth_blueprint`).
    pub fn parse(&self, current: &RequestSpec) -> Result<RequestSpec, SpecErrors> {
        let mut errors = SpecErrors::default();
        if let Some(name) = &self.name {
            let same = UnitName::parse(name).is_ok_and(|n| n == current.name);
            if !same {
                errors.push(
                    "name",
                    "The display name cannot change: it names the stack and the namespace.",
                );
            }
        }
        if let Some(slug) = &self.slug {
            if slug.trim() != current.slug.as_str() {
                errors.push(
                    "slug",
                    "The short name cannot change: it names the stack and the namespace.",
                );
            }
        }
        let description = Description::parse(&self.description)
            .map_err(|e| errors.push("description", e))
            .ok();
        let owner_contact = OwnerContact::parse(&self.owner_contact)
            .map_err(|e| errors.push("owner_contact", e))
            .ok();
        let size = self
            .size
            .parse::<Size>()
            .map_err(|e| errors.push("size", e))
            .ok();
        let version = if self.blueprint_version.trim().is_empty() {
            Ok(current.blueprint_version.clone())
        } else {
            BlueprintVersion::parse(&self.blueprint_version).map(Some)
        };
        let version = version
            .map_err(|e| errors.push("blueprint_version", e))
            .ok();
        let (Some(description), Some(owner_contact), Some(size), Some(blueprint_version)) =
            (description, owner_contact, size, version)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let next = RequestSpec {
            name: current.name.clone(),
            slug: current.slug.clone(),
            description,
            owner_contact,
            blueprint: current.blueprint,
            size,
            blueprint_version,
            overrides: self.overrides.clone().normalized(),
        };
        let unchanged = RequestSpec {
            overrides: current.overrides.clone().normalized(),
            ..current.clone()
        };
        if next == unchanged {
            errors.push("form", NOTHING_WOULD_CHANGE);
            return Err(errors);
        }
        Ok(next)
    }
}

/// The typed confirmation of a decommission: exactly the unit's display name.
pub fn check_decommission_confirmation(
    current: &RequestSpec,
    typed: &str,
) -> Result<(), SpecErrors> {
    let typed = typed.split_whitespace().collect::<Vec<_>>().join(" ");
    if typed == current.name.as_str() {
        Ok(())
    } else {
        let mut errors = SpecErrors::default();
        errors.push(
            "confirm",
            format!(
                "Type the unit's name exactly ('{}') to confirm.",
                current.name
            ),
        );
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn current() -> RequestSpec {
        RequestSpec::parse(
            "Trucking",
            "",
            "Fleet telemetry",
            "jane@seaview.example",
            "insight",
            "medium",
        )
        .map(|mut s| {
            s.blueprint_version = Some(BlueprintVersion::parse("1.0.0").unwrap());
            s
        })
        .unwrap()
    }

    fn form(spec: &RequestSpec) -> ChangeForm {
        ChangeForm {
            name: Some(spec.name.to_string()),
            slug: Some(spec.slug.as_str().into()),
            description: spec.description.as_str().into(),
            owner_contact: spec.owner_contact.as_str().into(),
            size: spec.size.as_str().into(),
            blueprint_version: String::new(),
            overrides: AppOverrides::default(),
        }
    }

    #[test]
    fn environment_transition_table() {
        use EnvironmentStatus::*;
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
            (Failed, Changing),
            (Failed, Decommissioning),
            (Ready, Changing),
            (Ready, Decommissioning),
            (Changing, Ready),
            (Changing, Failed),
            (Decommissioning, Decommissioned),
            (Decommissioning, Failed),
            (Decommissioning, Ready),
        ];
        for from in EnvironmentStatus::ALL {
            for to in EnvironmentStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from}→{to}"
                );
            }
        }
        assert_eq!(
            EnvironmentStatus::ALL.to_vec(),
            EnvironmentStatus::iter().collect::<Vec<_>>()
        );
    }

    /// Where an environment can stand while its request of `kind` is at `request`.
    fn possible(kind: RequestKind, request: RequestStatus) -> Vec<EnvironmentStatus> {
        use EnvironmentStatus as E;
        use RequestStatus as R;
        match (kind, request) {
            (RequestKind::Create, r) => vec![E::Submitted.follows(kind, r, false)],
            (RequestKind::Change, R::Provisioning) => vec![E::Changing],
            (RequestKind::Decommission, R::Provisioning) => vec![E::Decommissioning],
            (RequestKind::Decommission, R::Ready) => vec![E::Decommissioned],
            _ => vec![E::Ready, E::Failed],
        }
    }

    /// Every move `follows` makes for a legal request move is a legal environment move (or
    /// none), so the two tables cannot drift apart.
    #[test]
    fn follows_only_makes_legal_moves() {
        for kind in RequestKind::iter() {
            for from in RequestStatus::ALL {
                for to in RequestStatus::ALL
                    .into_iter()
                    .filter(|t| from.can_become(*t))
                {
                    for env in possible(kind, from) {
                        for rolled_back in [false, true] {
                            let next = env.follows(kind, to, rolled_back);
                            assert!(
                                next == env || env.can_become(next),
                                "{kind}: request {from}→{to} moves the environment {env}→{next}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_change_lives_beside_a_ready_environment() {
        use EnvironmentStatus as E;
        use RequestStatus as R;
        let k = RequestKind::Change;
        assert_eq!(E::Ready.follows(k, R::Submitted, false), E::Ready);
        assert_eq!(E::Ready.follows(k, R::Approved, false), E::Ready);
        assert_eq!(E::Ready.follows(k, R::Provisioning, false), E::Changing);
        assert_eq!(E::Changing.follows(k, R::Ready, false), E::Ready);
        assert_eq!(E::Changing.follows(k, R::Failed, true), E::Ready);
        assert_eq!(E::Changing.follows(k, R::Failed, false), E::Failed);
        assert_eq!(E::Failed.follows(k, R::Provisioning, false), E::Changing);
        let d = RequestKind::Decommission;
        assert_eq!(
            E::Ready.follows(d, R::Provisioning, false),
            E::Decommissioning
        );
        assert_eq!(
            E::Decommissioning.follows(d, R::Ready, false),
            E::Decommissioned
        );
        assert!(!E::Decommissioned.holds_name());
        assert!(E::Failed.accepts_requests() && !E::Changing.accepts_requests());
    }

    #[test]
    fn a_change_keeps_the_name_and_changes_something() {
        let cur = current();
        let err = form(&cur).parse(&cur).unwrap_err();
        assert_eq!(err.get("form"), Some(NOTHING_WOULD_CHANGE));

        let mut f = form(&cur);
        f.name = Some("Trucks".into());
        f.slug = Some("trucks".into());
        f.size = "large".into();
        let err = f.parse(&cur).unwrap_err();
        assert!(err.get("name").unwrap().contains("cannot change"));
        assert!(err.get("slug").unwrap().contains("cannot change"));

        let mut f = form(&cur);
        f.name = Some("  Trucking ".into());
        f.size = "large".into();
        let next = f.parse(&cur).unwrap();
        assert_eq!(next.size, Size::Large);
        assert_eq!(next.name, cur.name);
        assert_eq!(next.blueprint_version, cur.blueprint_version);

        let mut f = form(&cur);
        f.overrides = AppOverrides(BTreeMap::from([("dsm".into(), BTreeMap::new())]));
        assert!(f.parse(&cur).is_err(), "an empty override changes nothing");
        f.overrides.0.insert(
            "influxdb".into(),
            BTreeMap::from([("retention".into(), serde_json::json!("30d"))]),
        );
        let next = f.parse(&cur).unwrap();
        assert_eq!(next.overrides.0.len(), 1, "empty apps are dropped");

        let mut f = form(&cur);
        f.blueprint_version = "1.1".into();
        f.owner_contact = "nope".into();
        let err = f.parse(&cur).unwrap_err();
        assert!(err.get("blueprint_version").is_some());
        assert!(err.get("owner_contact").is_some());
    }

    #[test]
    fn decommission_needs_the_exact_name() {
        let cur = current();
        assert!(check_decommission_confirmation(&cur, " Trucking ").is_ok());
        for bad in ["trucking", "Truck", ""] {
            assert!(check_decommission_confirmation(&cur, bad)
                .unwrap_err()
                .get("confirm")
                .is_some());
        }
    }

    #[test]
    fn versions_parse() {
        assert!(BlueprintVersion::parse("1.10.0").is_ok());
        for bad in ["1.0", "v1.0.0", "01.0.0", "1.0.0-rc1", "", "1..0"] {
            assert!(BlueprintVersion::parse(bad).is_err(), "{bad}");
        }
    }
}
