//! Who a stack belongs to: the company and business unit, their stack name and tags.

use serde::{Deserialize, Serialize};

use crate::error::AwsError;

/// A company and one of its business units, as the AWS stage needs them.
///
/// Slugs are lower-case DNS labels (they name the stack, the secrets and the S3 prefix);
/// display names go into tag values, as tag text ([`UnitIdentity::from_names`] maps them). The
/// domain crate validates units at the edge; this type re-checks what AWS would otherwise
/// reject, so bad input never reaches AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitIdentity {
    company_slug: String,
    company_name: String,
    unit_slug: String,
    unit_name: String,
    /// Set when the unit's slug was used before by an environment since decommissioned: that
    /// environment's secrets keep their names through their recovery window, so this one's
    /// secrets live one level deeper, under `<unit>/<incarnation>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incarnation: Option<String>,
}

const MAX_COMPANY_SLUG: usize = 32;
const MAX_UNIT_SLUG: usize = 63;

/// Separates the company's slug from the unit's in a stack name. No slug contains it (both
/// slug parsers refuse two hyphens in a row, and so does [`check_slug`]), so a stack name
/// names exactly one company and unit: `berth-acme--x-y` is company `acme`, unit `x-y`, and
/// `berth-acme-x--y` company `acme-x`, unit `y`. IAM policies scope a company's stacks to
/// `berth-<company>--*` by it.
pub const STACK_NAME_SEPARATOR: &str = "--";

fn check_slug(what: &str, slug: &str, max: usize) -> Result<(), AwsError> {
    let ok = !slug.is_empty()
        && slug.len() <= max
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains(STACK_NAME_SEPARATOR);
    if ok {
        Ok(())
    } else {
        Err(AwsError::InvalidInput(format!(
            "{what} slug {slug:?} must be 1-{max} lower-case letters, digits or '-', not starting \
             or ending with '-' and without '--' (it separates company and unit in stack names)"
        )))
    }
}

/// Characters AWS accepts in tag keys and values (letters, numbers, spaces, `_.:/=+-@`), by the
/// one definition the domain keeps ([`berth_domain::tag`]); display names reach this check
/// already mapped by [`berth_domain::aws_tag_text`].
fn check_tag_text(what: &str, text: &str, max: usize) -> Result<(), AwsError> {
    if berth_domain::is_aws_tag_text(text, max) {
        Ok(())
    } else {
        Err(AwsError::InvalidInput(format!(
            "{what} {text:?} must be 1-{max} letters, digits, spaces or _.:/=+-@"
        )))
    }
}

impl UnitIdentity {
    pub fn parse(
        company_slug: &str,
        company_name: &str,
        unit_slug: &str,
        unit_name: &str,
    ) -> Result<Self, AwsError> {
        check_slug("company", company_slug, MAX_COMPANY_SLUG)?;
        check_slug("unit", unit_slug, MAX_UNIT_SLUG)?;
        check_tag_text("company name", company_name, 128)?;
        check_tag_text("unit name", unit_name, 256)?;
        Ok(Self {
            company_slug: company_slug.to_owned(),
            company_name: company_name.to_owned(),
            unit_slug: unit_slug.to_owned(),
            unit_name: unit_name.to_owned(),
            incarnation: None,
        })
    }

    /// [`UnitIdentity::parse`] of the names as people typed them, each mapped to tag text AWS
    /// accepts ([`berth_domain::aws_tag_text`]: "Ben & Jerry's (EU)" → "Ben and Jerrys EU"), or
    /// to its slug when nothing of it is left. Every unit name the request form accepts passes.
    pub fn from_names(
        company_slug: &str,
        company_name: &str,
        unit_slug: &str,
        unit_name: &str,
    ) -> Result<Self, AwsError> {
        Self::parse(
            company_slug,
            &berth_domain::aws_tag_text_or(company_name, company_slug),
            unit_slug,
            &berth_domain::aws_tag_text_or(unit_name, unit_slug),
        )
    }

    /// This unit as a later incarnation of its slug (see [`UnitIdentity::secret_path`]):
    /// `incarnation` is 8 lower-case hex digits, unique per environment.
    pub fn with_incarnation(mut self, incarnation: &str) -> Result<Self, AwsError> {
        if incarnation.len() != 8
            || !incarnation
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(AwsError::InvalidInput(format!(
                "incarnation {incarnation:?} must be 8 lower-case hex digits"
            )));
        }
        self.incarnation = Some(incarnation.to_owned());
        Ok(self)
    }

    pub fn incarnation(&self) -> Option<&str> {
        self.incarnation.as_deref()
    }

    /// Where the unit's secrets are named: `berth/<company>/<unit>`, or
    /// `berth/<company>/<unit>/<incarnation>` for a slug used again after a decommission (the
    /// earlier secrets may still be in their recovery window under the shorter path, and
    /// Secrets Manager refuses a new secret with a scheduled one's name). The template builds
    /// the same path from its `Incarnation` parameter.
    pub fn secret_path(&self) -> String {
        match &self.incarnation {
            None => format!("berth/{}/{}", self.company_slug, self.unit_slug),
            Some(i) => format!("berth/{}/{}/{i}", self.company_slug, self.unit_slug),
        }
    }

    pub fn company_slug(&self) -> &str {
        &self.company_slug
    }
    pub fn company_name(&self) -> &str {
        &self.company_name
    }
    pub fn unit_slug(&self) -> &str {
        &self.unit_slug
    }
    pub fn unit_name(&self) -> &str {
        &self.unit_name
    }

    /// `berth-<company>--<unit>` ([`STACK_NAME_SEPARATOR`]): at most 6 + 32 + 2 + 63 = 103
    /// characters, within CloudFormation's 128 and its `[a-zA-Z][-a-zA-Z0-9]*` syntax.
    pub fn stack_name(&self) -> String {
        format!(
            "berth-{}{STACK_NAME_SEPARATOR}{}",
            self.company_slug, self.unit_slug
        )
    }

    /// The name stacks had before [`Self::stack_name`]: `berth-<company>-<unit>`, ambiguous
    /// (`acme` + `x-y` and `acme-x` + `y` give the same). Only looked up for a unit whose
    /// stack id is not recorded, and a stack under it is taken only when its `berth:company`
    /// and `berth:unit` tags are the unit's.
    pub fn legacy_stack_name(&self) -> String {
        format!("berth-{}-{}", self.company_slug, self.unit_slug)
    }

    /// `berth:company` = company slug and `berth:unit` = unit slug: the tags that say a stack
    /// or secret is this unit's. Berth updates and deletes only stacks carrying both.
    pub fn owner_tags(&self) -> [Tag; 2] {
        [
            Tag {
                key: TAG_COMPANY.into(),
                value: self.company_slug.clone(),
            },
            Tag {
                key: TAG_UNIT.into(),
                value: self.unit_slug.clone(),
            },
        ]
    }
}

/// One resource tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.key, self.value)
    }
}

/// How a company tags its units: a key and a value template, each with the placeholders
/// `{company}`, `{unit}` (display names) and `{company_slug}`, `{unit_slug}`.
///
/// The default is SeaView's convention, key `{company}` and value `{unit}`: the Trucking
/// unit's resources carry the tag `SeaView` = `Trucking`, written `SeaView::Trucking`.
/// Stacks are found again by this tag, so changing a company's scheme needs a re-tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagScheme {
    pub key: String,
    pub value: String,
}

impl Default for TagScheme {
    fn default() -> Self {
        Self {
            key: "{company}".into(),
            value: "{unit}".into(),
        }
    }
}

/// Fixed tags every Berth resource carries besides the company's own.
pub const TAG_COMPANY: &str = "berth:company";
pub const TAG_UNIT: &str = "berth:unit";
pub const TAG_MANAGED_BY: &str = "berth:managed-by";

impl TagScheme {
    fn fill(template: &str, unit: &UnitIdentity) -> String {
        template
            .replace("{company_slug}", &unit.company_slug)
            .replace("{unit_slug}", &unit.unit_slug)
            .replace("{company}", &unit.company_name)
            .replace("{unit}", &unit.unit_name)
    }

    /// Checks the scheme once at start-up: known placeholders only, no reserved `aws:` keys,
    /// and a key that identifies the unit together with the value.
    pub fn validate(&self) -> Result<(), AwsError> {
        for (what, template) in [("key", &self.key), ("value", &self.value)] {
            let stripped = template
                .replace("{company_slug}", "")
                .replace("{unit_slug}", "")
                .replace("{company}", "")
                .replace("{unit}", "");
            if stripped.contains('{') || stripped.contains('}') {
                return Err(AwsError::Config(format!(
                    "tag scheme {what} {template:?}: only {{company}}, {{unit}}, {{company_slug}} and {{unit_slug}} may be used"
                )));
            }
        }
        if self.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::Config(
                "tag scheme key must not start with aws:".into(),
            ));
        }
        if self.key.to_ascii_lowercase().starts_with("berth:") {
            return Err(AwsError::Config(
                "tag scheme key must not start with berth: (Berth's own tags, which say whose a \
                 stack is)"
                    .into(),
            ));
        }
        let both = format!("{}{}", self.key, self.value);
        if !(both.contains("{unit}") || both.contains("{unit_slug}")) {
            return Err(AwsError::Config(
                "tag scheme must include {unit} or {unit_slug} in its key or value".into(),
            ));
        }
        Ok(())
    }

    /// The company's unit tag for `unit`.
    pub fn unit_tag(&self, unit: &UnitIdentity) -> Result<Tag, AwsError> {
        let tag = Tag {
            key: Self::fill(&self.key, unit),
            value: Self::fill(&self.value, unit),
        };
        check_tag_text("tag key", &tag.key, 128)?;
        check_tag_text("tag value", &tag.value, 256)?;
        let lower = tag.key.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("berth:") {
            return Err(AwsError::InvalidInput(format!(
                "tag key {:?} uses a reserved prefix (aws: or berth:)",
                tag.key
            )));
        }
        Ok(tag)
    }

    /// Every stack tag for `unit`: the company's unit tag, then the fixed `berth:*` tags
    /// ([`UnitIdentity::owner_tags`] and `berth:managed-by`).
    pub fn stack_tags(&self, unit: &UnitIdentity) -> Result<Vec<Tag>, AwsError> {
        let mut tags = vec![self.unit_tag(unit)?];
        tags.extend(unit.owner_tags());
        tags.push(Tag {
            key: TAG_MANAGED_BY.into(),
            value: "berth".into(),
        });
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trucking() -> UnitIdentity {
        UnitIdentity::parse("seaview", "SeaView", "trucking", "Trucking").unwrap()
    }

    #[test]
    fn a_later_incarnation_names_its_secrets_apart() {
        assert_eq!(trucking().secret_path(), "berth/seaview/trucking");
        let again = trucking().with_incarnation("0a1b2c3d").unwrap();
        assert_eq!(again.secret_path(), "berth/seaview/trucking/0a1b2c3d");
        // The stack name stays: a deleted stack's name may be used again.
        assert_eq!(again.stack_name(), trucking().stack_name());
        for bad in [
            "",
            "0A1B2C3D",
            "0a1b2c3",
            "0a1b2c3d4",
            "0a1b2c3g",
            "../../x",
        ] {
            assert!(trucking().with_incarnation(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_scheme_is_company_colon_colon_unit() {
        let tag = TagScheme::default().unit_tag(&trucking()).unwrap();
        assert_eq!(tag.to_string(), "SeaView::Trucking");
        assert_eq!(trucking().stack_name(), "berth-seaview--trucking");
        assert_eq!(trucking().legacy_stack_name(), "berth-seaview-trucking");
    }

    /// The old `berth-<company>-<unit>` gave `acme` + `x-y` and `acme-x` + `y` one stack name.
    #[test]
    fn stack_names_name_exactly_one_company_and_unit() {
        let a = UnitIdentity::parse("acme", "Acme", "x-y", "X Y").unwrap();
        let b = UnitIdentity::parse("acme-x", "Acme X", "y", "Y").unwrap();
        assert_ne!(a.stack_name(), b.stack_name());
        assert_eq!(a.stack_name(), "berth-acme--x-y");
        assert_eq!(b.stack_name(), "berth-acme-x--y");
        // A company's IAM pattern berth-<company>--* covers its stacks and no other company's.
        assert!(a.stack_name().starts_with("berth-acme--"));
        assert!(!b.stack_name().starts_with("berth-acme--"));
        for (company, unit) in [("ac--me", "trucking"), ("acme", "x--y")] {
            assert!(UnitIdentity::parse(company, "Acme", unit, "Unit").is_err());
        }
        let longest = UnitIdentity::parse(&"a".repeat(32), "A", &"b".repeat(63), "B").unwrap();
        assert!(longest.stack_name().len() <= 128);
    }

    #[test]
    fn custom_scheme_and_fixed_tags() {
        let scheme = TagScheme {
            key: "{company}:business-unit".into(),
            value: "{unit_slug}".into(),
        };
        scheme.validate().unwrap();
        let tags = scheme.stack_tags(&trucking()).unwrap();
        assert_eq!(tags[0].key, "SeaView:business-unit");
        assert_eq!(tags[0].value, "trucking");
        assert!(tags
            .iter()
            .any(|t| t.key == TAG_MANAGED_BY && t.value == "berth"));
    }

    #[test]
    fn bad_schemes_are_refused() {
        for (key, value) in [
            ("aws:unit", "{unit}"),
            ("berth:unit", "{unit}"),
            ("{company}", "{division}"),
            ("{company}", "fixed"),
        ] {
            let scheme = TagScheme {
                key: key.into(),
                value: value.into(),
            };
            assert!(scheme.validate().is_err(), "{key} {value}");
        }
    }

    /// Names the request form accepts but AWS tags refuse are mapped, never refused late.
    #[test]
    fn names_people_type_are_tagged_as_aws_accepts() {
        let unit = UnitIdentity::from_names(
            "seaview",
            "SeaView & Co.",
            "ben-jerrys",
            "Ben & Jerry's (EU), North",
        )
        .unwrap();
        assert_eq!(unit.unit_name(), "Ben and Jerrys EU North");
        assert_eq!(unit.company_name(), "SeaView and Co.");
        let tags = TagScheme::default().stack_tags(&unit).unwrap();
        assert_eq!(
            tags[0].to_string(),
            "SeaView and Co.::Ben and Jerrys EU North"
        );
        for tag in &tags {
            assert!(berth_domain::is_aws_tag_text(&tag.key, 128), "{tag}");
            assert!(berth_domain::is_aws_tag_text(&tag.value, 256), "{tag}");
        }
        // Nothing taggable left: the slug stands in.
        assert_eq!(
            UnitIdentity::from_names("seaview", "SeaView", "ab", "ⒶⒷ")
                .unwrap()
                .unit_name(),
            "ab"
        );
        // Names AWS already accepts keep their tags.
        assert_eq!(
            UnitIdentity::from_names("seaview", "SeaView", "trucking", "Trucking").unwrap(),
            trucking()
        );
    }

    #[test]
    fn bad_units_never_reach_aws() {
        for (company, unit) in [
            ("SeaView", "trucking"),
            ("seaview", "-trucking"),
            ("seaview", ""),
            ("seaview", "truck_ing"),
        ] {
            assert!(UnitIdentity::parse(company, "SeaView", unit, "Trucking").is_err());
        }
        assert!(UnitIdentity::parse("seaview", "SeaView", "ca", "California {charging}").is_err());
        // Rust calls a Devanagari vowel sign alphanumeric; AWS refuses it in tags.
        assert!(UnitIdentity::parse("seaview", "SeaView", "ca", "\u{947}ab").is_err());
        assert!(
            UnitIdentity::parse("seaview", "SeaView", "ca", "California charging stations").is_ok()
        );
    }
}
