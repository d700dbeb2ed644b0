//! Reading the groups claim, whatever shape the provider gives it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every claim that openidconnect's standard claims do not model (`groups`, `roles`,
/// `realm_access`, …), kept as JSON so the groups claim name can be configured.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct OtherClaims {
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

impl openidconnect::AdditionalClaims for OtherClaims {}

/// What the groups claim said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GroupsClaim {
    /// The claim is there (possibly an empty list).
    Present(Vec<String>),
    /// The claim is not there at all.
    Absent,
    /// The claim is there but is not a string or a list of strings.
    Unusable,
}

/// Looks up `name` as a top-level claim first (names may contain dots: URIs such as
/// `https://example.com/groups`), then as a dotted path into nested objects
/// (`realm_access.roles`). A string is one group; a list keeps its string members.
pub(crate) fn groups_claim(claims: &Map<String, Value>, name: &str) -> GroupsClaim {
    let value = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |v, key| v.as_object()?.get(key))
    });
    match value {
        None | Some(Value::Null) => GroupsClaim::Absent,
        Some(Value::String(s)) => GroupsClaim::Present(vec![s.clone()]),
        Some(Value::Array(items)) => {
            let groups: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if groups.len() == items.len() {
                GroupsClaim::Present(groups)
            } else {
                GroupsClaim::Unusable
            }
        }
        Some(_) => GroupsClaim::Unusable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn list_string_nested_and_uri_names() {
        let c = map(json!({
            "groups": ["a", "b"],
            "single": "only",
            "realm_access": { "roles": ["admin"] },
            "https://example.com/groups": ["uri"],
            "empty": [],
        }));
        assert_eq!(
            groups_claim(&c, "groups"),
            GroupsClaim::Present(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            groups_claim(&c, "single"),
            GroupsClaim::Present(vec!["only".into()])
        );
        assert_eq!(
            groups_claim(&c, "realm_access.roles"),
            GroupsClaim::Present(vec!["admin".into()])
        );
        assert_eq!(
            groups_claim(&c, "https://example.com/groups"),
            GroupsClaim::Present(vec!["uri".into()])
        );
        assert_eq!(groups_claim(&c, "empty"), GroupsClaim::Present(vec![]));
    }

    #[test]
    fn absent_and_unusable() {
        let c = map(json!({ "n": 3, "mixed": ["a", 1], "nul": null, "o": {} }));
        assert_eq!(groups_claim(&c, "groups"), GroupsClaim::Absent);
        assert_eq!(groups_claim(&c, "nul"), GroupsClaim::Absent);
        assert_eq!(groups_claim(&c, "o.x"), GroupsClaim::Absent);
        assert_eq!(groups_claim(&c, "n"), GroupsClaim::Unusable);
        assert_eq!(groups_claim(&c, "mixed"), GroupsClaim::Unusable);
        assert_eq!(groups_claim(&c, "o"), GroupsClaim::Unusable);
    }
}
