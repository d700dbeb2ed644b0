//! What AWS accepts in a tag, and how a unit's or company's display name becomes tag text.
//!
//! A unit's name is what people typed ("Ben & Jerry's (EU), North", see [`crate::UnitName`]);
//! AWS tag keys and values (IAM, Secrets Manager and CloudFormation share one rule) accept only
//! letters, numbers, spaces and `_.:/=+-@`, the pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`. Names
//! are not refused for that: they are mapped, here and only here ([`aws_tag_text`]), and the
//! AWS stage re-checks the result with the same [`is_aws_tag_char`] before anything reaches AWS.
//! The tag value is for people reading AWS; Berth recognises its stacks and secrets by the slug
//! tags (`berth:company`, `berth:unit`), so two names that map to the same text stay apart.
//!
//! Server-side only: the browser never calls these, so the Unicode category table stays out of
//! the WASM.

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// The longest tag text [`aws_tag_text`] makes: AWS allows 128 characters in a key and 256 in a
/// value, and a company's tag scheme may put a name in either.
pub const AWS_TAG_TEXT_MAX: usize = 128;

/// What AWS accepts in a tag key or value besides letters, numbers and spaces.
pub const AWS_TAG_SYMBOLS: &str = "_.:/=+-@";

/// Whether AWS accepts `c` in a tag key or value: a letter (`\p{L}`), a number (`\p{N}`), a
/// separator (`\p{Z}`, e.g. a space) or one of [`AWS_TAG_SYMBOLS`]. Combining marks (`\p{M}`)
/// are not letters here, although Rust's `char::is_alphanumeric` counts some of them.
pub fn is_aws_tag_char(c: char) -> bool {
    AWS_TAG_SYMBOLS.contains(c)
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
                | G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
        )
}

/// Whether `text` is tag text AWS accepts: 1 to `max` characters AWS accepts, not only spaces.
pub fn is_aws_tag_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && text.chars().all(is_aws_tag_char)
}

/// `text` as tag text AWS accepts: `&` becomes "and", apostrophes are dropped, combining marks
/// are dropped, every other character AWS refuses (`,()` among them) and every kind of space
/// becomes one space; spaces are collapsed and trimmed, and the result is cut to
/// [`AWS_TAG_TEXT_MAX`] characters. Text AWS already accepts (single spaces, trimmed, short
/// enough) comes back unchanged, so the tags of units named that way never change.
/// "Ben & Jerry's (EU), North" → "Ben and Jerrys EU North". Empty when nothing is left (a name
/// of symbols only): use [`aws_tag_text_or`] then.
pub fn aws_tag_text(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => spaced.push_str(" and "),
            '\'' | '\u{2019}' => {}
            c if c.is_whitespace() => spaced.push(' '),
            c if is_aws_tag_char(c) => spaced.push(c),
            c if matches!(
                get_general_category(c),
                G::NonspacingMark | G::SpacingMark | G::EnclosingMark
            ) => {}
            _ => spaced.push(' '),
        }
    }
    let collapsed = spaced
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>();
    let joined = collapsed.join(" ");
    joined
        .chars()
        .take(AWS_TAG_TEXT_MAX)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// [`aws_tag_text`] of `text`, or `fallback` (a slug, always tag text) when nothing of `text`
/// is left.
pub fn aws_tag_text_or(text: &str, fallback: &str) -> String {
    let mapped = aws_tag_text(text);
    if mapped.is_empty() {
        fallback.to_owned()
    } else {
        mapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UnitName, UnitSlug};
    use proptest::prelude::*;

    #[test]
    fn names_people_type_become_tag_text() {
        for (name, tag) in [
            ("Ben & Jerry's (EU), North", "Ben and Jerrys EU North"),
            ("R&D", "R and D"),
            ("Trucking (EU)", "Trucking EU"),
            ("Ærø Logistik & Co.", "Ærø Logistik and Co."),
            (
                "California charging stations",
                "California charging stations",
            ),
            (
                "Sea-View 2.0 @ Hamburg/Altona",
                "Sea-View 2.0 @ Hamburg/Altona",
            ),
            ("東京 物流", "東京 物流"),
            // A decomposed accent keeps its letter; AWS refuses the mark itself.
            ("Cafe\u{301} Logistics", "Cafe Logistics"),
            ("tab\tand\u{a0}nbsp", "tab and nbsp"),
            ("'(),", ""),
        ] {
            assert_eq!(aws_tag_text(name), tag, "{name:?}");
        }
        assert_eq!(aws_tag_text_or("ⒶⒷ", "ab"), "ab");
        assert_eq!(aws_tag_text_or("Trucking", "trucking"), "Trucking");
        assert_eq!(aws_tag_text(&"&".repeat(64)).chars().count(), 127);
    }

    #[test]
    fn the_charset_is_aws_tag_rule() {
        for ok in [
            'a', 'Z', 'é', 'ß', '東', '٣', 'Ⅻ', ' ', '_', '.', ':', '/', '=', '+', '-', '@',
        ] {
            assert!(is_aws_tag_char(ok), "{ok:?}");
        }
        // Rust calls U+0947 (a Devanagari vowel sign) and Ⓐ alphanumeric; AWS does not.
        for bad in [
            '&', '\'', ',', '(', ')', '{', '#', '\u{947}', 'Ⓐ', '\u{301}', '\n', '€',
        ] {
            assert!(!is_aws_tag_char(bad), "{bad:?}");
        }
        assert!(is_aws_tag_text("Trucking", 128));
        assert!(!is_aws_tag_text("  ", 128));
        assert!(!is_aws_tag_text("Ben & Jerry's", 128));
        assert!(!is_aws_tag_text(&"a".repeat(129), 128));
    }

    proptest! {
        /// Every name the form accepts becomes tag text AWS accepts: nothing the form lets
        /// through fails at provisioning for its tags.
        #[test]
        fn every_accepted_name_becomes_valid_tag_text(input in any::<String>(), slug in "[a-z][a-z0-9]{1,20}") {
            if let Ok(name) = UnitName::parse(&input) {
                let slug = UnitSlug::parse(&slug).map(|s| s.to_string()).unwrap_or_else(|_| "unit".into());
                let tag = aws_tag_text_or(name.as_str(), &slug);
                prop_assert!(is_aws_tag_text(&tag, AWS_TAG_TEXT_MAX), "{input:?} → {tag:?}");
            }
        }

        /// The same over names drawn from what the form allows, which arbitrary strings rarely hit.
        #[test]
        fn names_of_the_form_charset_become_valid_tag_text(input in "[A-Za-zÆæøÅ東\u{947}Ⓐ0-9][A-Za-z0-9 &'.,()\\-\u{301}]{1,63}") {
            if let Ok(name) = UnitName::parse(&input) {
                let tag = aws_tag_text_or(name.as_str(), "unit");
                prop_assert!(is_aws_tag_text(&tag, AWS_TAG_TEXT_MAX), "{input:?} → {tag:?}");
            }
        }

        /// Text AWS already accepts is left as it is, so existing units keep their tags.
        #[test]
        fn valid_tag_text_is_unchanged(words in prop::collection::vec("[A-Za-z0-9_.:/=+@ß東-]{1,12}", 1..8)) {
            let text = words.join(" ");
            prop_assume!(text.chars().count() <= AWS_TAG_TEXT_MAX);
            prop_assert_eq!(aws_tag_text(&text), text);
        }

        #[test]
        fn mapping_never_panics_and_is_idempotent(input in any::<String>()) {
            let once = aws_tag_text(&input);
            prop_assert!(once.is_empty() || is_aws_tag_text(&once, AWS_TAG_TEXT_MAX));
            prop_assert_eq!(aws_tag_text(&once), once.clone());
        }
    }
}
