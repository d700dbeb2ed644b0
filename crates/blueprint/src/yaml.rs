//! YAML-safe emission of template values.
//!
//! Every value a template prints goes through [`to_flow_yaml`]: strings become double-quoted
//! scalars with every character that YAML could read differently escaped (`:`, `#`, quotes and
//! newlines need nothing special inside double quotes, but `\`, `"`, control characters, NEL,
//! the Unicode line/paragraph separators and the BOM do), sequences and maps become flow
//! collections. Flow style fits anywhere a scalar does, so output stays valid whatever the
//! indentation of the template line.

use std::fmt::Write as _;

use serde_json::Value as Json;

/// Emits `value` as a single-line YAML flow node that parses back to the same value.
pub fn to_flow_yaml(value: &Json) -> String {
    let mut out = String::new();
    write_node(&mut out, value);
    out
}

/// Emits a string as a double-quoted YAML scalar.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    out
}

fn write_node(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => write_number(out, n),
        Json::String(s) => write_str(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_node(out, item);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_node(out, v);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        // JSON numbers are always finite. `{:?}` keeps a `.0` or an exponent, so the scalar
        // resolves as a float again.
        let _ = write!(out, "{f:?}");
    } else {
        out.push_str("null");
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let cp = c as u32;
                if cp <= 0xFFFF {
                    let _ = write!(out, "\\u{cp:04X}");
                } else {
                    let _ = write!(out, "\\U{cp:08X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters outside YAML's printable set, plus those YAML treats as line breaks or a BOM.
fn needs_escape(c: char) -> bool {
    let cp = c as u32;
    !matches!(cp, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        || matches!(cp, 0x2028 | 0x2029 | 0xFEFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Json) -> Json {
        let doc = format!("key: {}\n", to_flow_yaml(v));
        let parsed: Json = serde_norway::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        parsed["key"].clone()
    }

    #[test]
    fn tricky_strings_roundtrip() {
        for s in [
            "a: b",
            "# not a comment",
            "it's \"quoted\"",
            "line1\nline2\r\n",
            "tab\there",
            "back\\slash",
            "yes",
            "null",
            "~",
            "0x10",
            "1e3",
            "- item",
            "{a: 1}",
            "[x]",
            "&anchor *alias !tag |block >fold %dir @at `tick",
            "\u{85}\u{2028}\u{2029}\u{feff}\u{0}\u{7f}\u{9f}",
            "Montréal 🚚",
            "",
            " leading and trailing ",
        ] {
            assert_eq!(roundtrip(&json!(s)), json!(s), "{s:?}");
        }
    }

    #[test]
    fn collections_and_scalars_roundtrip() {
        let v = json!({"a: b": [1, -2, 1.5, 1e100, true, null, "x#y"], "": {"nested": "v"}});
        assert_eq!(roundtrip(&v), v);
    }
}
