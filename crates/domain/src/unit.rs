//! What a business unit is called, and the slug that names its namespace, stack and tags.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::lifecycle::{AppOverrides, BlueprintVersion};
use crate::request::{BlueprintName, Size};

/// Why one form field was refused; `field` matches the form's input name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The display name of a business unit, e.g. "California charging stations".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnitName(String);

impl UnitName {
    pub const MAX_CHARS: usize = 64;

    /// Trims and collapses inner whitespace; letters (any script), digits, spaces and `&'.,()-`.
    /// AWS tags refuse `&'(),`: the AWS stage tags the unit with [`crate::tag::aws_tag_text`] of
    /// the name ("Ben & Jerry's" → "Ben and Jerrys"), so every name accepted here provisions.
    pub fn parse(input: &str) -> Result<Self, String> {
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let count = collapsed.chars().count();
        if count < 2 {
            return Err("Enter a name of at least 2 characters.".into());
        }
        if count > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        if !collapsed.chars().next().is_some_and(char::is_alphanumeric) {
            return Err("Start the name with a letter or a digit.".into());
        }
        if let Some(bad) = collapsed
            .chars()
            .find(|c| !(c.is_alphanumeric() || " &'.,()-".contains(*c)))
        {
            return Err(format!(
                "'{bad}' is not allowed: use letters, digits, spaces and & ' . , ( ) -"
            ));
        }
        Ok(Self(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UnitName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UnitName> for String {
    fn from(value: UnitName) -> Self {
        value.0
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names Kubernetes, Rancher and Helm reserve for themselves; a unit may not take them.
const RESERVED: &[&str] = &[
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "cattle-system",
    "cattle-impersonation-system",
    "cattle-fleet-system",
    "cattle-fleet-local-system",
    "cattle-global-data",
    "cattle-monitoring-system",
    "fleet-default",
    "fleet-local",
    "local",
    "berth",
    "cert-manager",
    "ingress-nginx",
];
const RESERVED_PREFIXES: &[&str] = &["kube-", "cattle-", "fleet-", "rancher-", "berth-"];

/// The machine name of a unit: at once a Kubernetes namespace (DNS-1123 label), part of a
/// CloudFormation stack name (`berth-<company>-<slug>`, ≤128 chars, must start with a letter) and
/// a tag value. Lower-case, so uniqueness is case-insensitive by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnitSlug(String);

impl UnitSlug {
    /// Short enough that `berth-<company slug ≤ 40>-<unit slug>` stays a valid stack name and
    /// derived names (`<slug>-db`, Rancher project names) stay under 63 characters.
    pub const MAX_LEN: usize = 40;

    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.len() < 2 {
            return Err("Use at least 2 characters.".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!("Use at most {} characters.", Self::MAX_LEN));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "'{bad}' is not allowed: use lower-case letters a-z, digits and hyphens."
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("Start with a lower-case letter.".into());
        }
        if s.ends_with('-') {
            return Err("End with a letter or a digit.".into());
        }
        if s.contains("--") {
            return Err("Do not use two hyphens in a row.".into());
        }
        if RESERVED.contains(&s) || RESERVED_PREFIXES.iter().any(|p| s.starts_with(p)) {
            return Err(format!(
                "'{s}' is reserved by the platform; choose another."
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Suggests a slug from a display name ("California charging stations" →
    /// "california-charging-stations"); the result still has to pass [`UnitSlug::parse`].
    pub fn suggest(name: &str) -> String {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            let c = match c {
                'a'..='z' | '0'..='9' => c,
                'ä' | 'à' | 'á' | 'â' | 'å' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'ö' | 'ò' | 'ó' | 'ô' | 'ø' => 'o',
                'ü' | 'ù' | 'ú' | 'û' => 'u',
                'ï' | 'í' | 'ì' | 'î' => 'i',
                'ç' => 'c',
                'ñ' => 'n',
                _ => '-',
            };
            if c == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(c);
        }
        while out.ends_with('-') {
            out.pop();
        }
        let mut cut: String = out.chars().take(Self::MAX_LEN).collect();
        while cut.ends_with('-') {
            cut.pop();
        }
        cut
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UnitSlug {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UnitSlug> for String {
    fn from(value: UnitSlug) -> Self {
        value.0
    }
}

impl fmt::Display for UnitSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text describing what the unit runs; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.chars().count() > Self::MAX_CHARS {
            return Err(format!("Use at most {} characters.", Self::MAX_CHARS));
        }
        if s.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("Remove control characters.".into());
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Description {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Description> for String {
    fn from(value: Description) -> Self {
        value.0
    }
}

/// The e-mail address of the person answerable for the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OwnerContact(String);

impl OwnerContact {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let invalid = || "Enter an e-mail address such as jane.doe@seaview.example.".to_string();
        if s.is_empty() {
            return Err("Enter the owner's e-mail address.".into());
        }
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.contains('@') || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OwnerContact {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<OwnerContact> for String {
    fn from(value: OwnerContact) -> Self {
        value.0
    }
}

/// Every field error of one form submission, in form order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} field(s) are invalid", .0.len())]
pub struct SpecErrors(pub Vec<FieldError>);

impl SpecErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a manager asks for: a validated request form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub name: UnitName,
    pub slug: UnitSlug,
    pub description: Description,
    pub owner_contact: OwnerContact,
    pub blueprint: BlueprintName,
    pub size: Size,
    /// The blueprint version asked for; `None` on a new unit's request: the newest published
    /// when it is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint_version: Option<BlueprintVersion>,
    /// Values the manager set where the blueprint allows it (checked against its schema).
    #[serde(default, skip_serializing_if = "AppOverrides::is_empty")]
    pub overrides: AppOverrides,
}

impl RequestSpec {
    /// Parses the raw form fields at once, collecting every field's error. An empty slug is
    /// derived from the name.
    pub fn parse(
        name: &str,
        slug: &str,
        description: &str,
        owner_contact: &str,
        blueprint: &str,
        size: &str,
    ) -> Result<Self, SpecErrors> {
        let mut errors = SpecErrors::default();
        let name = UnitName::parse(name)
            .map_err(|e| errors.push("name", e))
            .ok();
        let slug_input = if slug.trim().is_empty() {
            name.as_ref()
                .map(|n| UnitSlug::suggest(n.as_str()))
                .unwrap_or_default()
        } else {
            slug.to_owned()
        };
        let slug = if slug.trim().is_empty() && name.is_none() {
            None // the name's error already explains it
        } else {
            UnitSlug::parse(&slug_input)
                .map_err(|e| errors.push("slug", e))
                .ok()
        };
        let description = Description::parse(description)
            .map_err(|e| errors.push("description", e))
            .ok();
        let owner_contact = OwnerContact::parse(owner_contact)
            .map_err(|e| errors.push("owner_contact", e))
            .ok();
        let blueprint = blueprint
            .parse::<BlueprintName>()
            .map_err(|e| errors.push("blueprint", e))
            .ok();
        let size = size
            .parse::<Size>()
            .map_err(|e| errors.push("size", e))
            .ok();
        match (name, slug, description, owner_contact, blueprint, size) {
            (
                Some(name),
                Some(slug),
                Some(description),
                Some(owner_contact),
                Some(blueprint),
                Some(size),
            ) if errors.is_empty() => Ok(Self {
                name,
                slug,
                description,
                owner_contact,
                blueprint,
                size,
                blueprint_version: None,
                overrides: AppOverrides::default(),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_collapsed() {
        let n = UnitName::parse("  California   charging stations ").unwrap();
        assert_eq!(n.as_str(), "California charging stations");
        assert!(UnitName::parse("T").is_err());
        assert!(UnitName::parse("Trucking<script>").is_err());
        assert!(UnitName::parse("-Trucking").is_err());
        assert!(UnitName::parse(&"x".repeat(65)).is_err());
        assert!(UnitName::parse("Ærø Logistik & Co.").is_ok());
    }

    #[test]
    fn slugs_follow_dns_1123_and_refuse_reserved_names() {
        for ok in ["trucking", "california-charging-stations", "a1", "t-2-x"] {
            assert!(UnitSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Trucking",
            "1trucking",
            "trucking-",
            "-trucking",
            "truck--ing",
            "truck_ing",
            "truck.ing",
            "default",
            "kube-system",
            "kube-public",
            "cattle-system",
            "kube-anything",
            "local",
        ] {
            assert!(UnitSlug::parse(bad).is_err(), "{bad}");
        }
        assert!(UnitSlug::parse(&"a".repeat(41)).is_err());
        assert!(UnitSlug::parse(&"a".repeat(40)).is_ok());
    }

    #[test]
    fn slugs_are_suggested_from_names() {
        assert_eq!(
            UnitSlug::suggest("California charging stations"),
            "california-charging-stations"
        );
        assert_eq!(UnitSlug::suggest("Trucking"), "trucking");
        assert_eq!(UnitSlug::suggest("  R&D  (Munich) "), "r-d-munich");
        assert_eq!(UnitSlug::suggest("Über Fahrzeuge"), "uber-fahrzeuge");
    }

    #[test]
    fn spec_collects_every_field_error() {
        let err = RequestSpec::parse("x", "", "", "not-an-email", "nope", "huge").unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "owner_contact", "blueprint", "size"]);
        let ok = RequestSpec::parse(
            "Trucking",
            "",
            "Fleet telemetry",
            "jane@seaview.example",
            "insight",
            "small",
        )
        .unwrap();
        assert_eq!(ok.slug.as_str(), "trucking");
        let reserved = RequestSpec::parse(
            "Default",
            "",
            "",
            "jane@seaview.example",
            "insight",
            "small",
        )
        .unwrap_err();
        assert!(reserved.get("slug").unwrap().contains("reserved"));
    }

    #[test]
    fn owner_contact_is_an_email() {
        assert!(OwnerContact::parse("jane.doe@seaview.example").is_ok());
        for bad in [
            "",
            "jane",
            "jane@",
            "@seaview.example",
            "jane@seaview",
            "a b@c.de",
            "a@-b.de",
        ] {
            assert!(OwnerContact::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_valid_slug_is_a_dns_label(s in "[a-z][a-z0-9-]{0,45}") {
            if let Ok(slug) = UnitSlug::parse(&s) {
                let v = slug.as_str();
                prop_assert!(v.len() <= 63 && v.len() >= 2);
                prop_assert!(v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!v.ends_with('-'));
            }
        }

        #[test]
        fn suggestions_of_valid_names_parse(name in "[A-Za-z][A-Za-z0-9 ]{1,60}") {
            let suggested = UnitSlug::suggest(&name);
            if suggested.len() >= 2 && suggested.starts_with(|c: char| c.is_ascii_lowercase()) {
                let parsed = UnitSlug::parse(&suggested);
                prop_assert!(parsed.is_ok() || parsed.unwrap_err().contains("reserved"));
            }
        }
    }
}
