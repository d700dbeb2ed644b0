//! Small helpers for Rancher's wire format: reading fields out of its loosely typed JSON, and
//! percent-encoding ids and names into URLs.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`), so an id such as
/// `c-m-1:p-2` is safe both as a path segment and as a query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The string at `path` (object keys, outermost first), or `""` when it is missing or not a
/// string: Rancher omits empty fields, and the callers treat "absent" and "empty" alike.
pub(crate) fn string_at(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default().to_owned()
}

/// Percent-encodes `s` for use as one URL path segment or query value.
pub(crate) fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode_component("c-m-1:p-2 x"), "c-m-1%3Ap-2%20x");
    }

    #[test]
    fn reads_nested_strings_or_empty() {
        let v = json!({"metadata": {"name": "a", "n": 1}});
        assert_eq!(string_at(&v, &["metadata", "name"]), "a");
        assert_eq!(string_at(&v, &["metadata", "n"]), "");
        assert_eq!(string_at(&v, &["spec", "x"]), "");
    }
}
