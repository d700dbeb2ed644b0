//! Links between pages: query strings (percent-encoded by the `percent-encoding` crate, in the
//! browser as on the server) and the cursors of the keyset-paged lists — the environment list
//! and the auditors' view — as the URL carries them.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// Everything but RFC 3986's unreserved characters is escaped in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `k=v&k=v` from the pairs whose value is not empty, values percent-encoded.
pub fn query_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// As [`query_pairs`], with the leading `?` (a bare `?` when every value is empty: a link to
/// the same page without parameters).
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    format!("?{}", query_pairs(pairs))
}

/// Where a previous/next link of a list points. The position is an opaque token (a row's
/// last change and id) that only the server reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListLink {
    /// The start of the list.
    First,
    After(String),
    Before(String),
}

impl ListLink {
    /// The link's query parameter (`after` or `before`), none for the start.
    pub fn param(&self) -> Option<(&'static str, &str)> {
        match self {
            ListLink::First => None,
            ListLink::After(t) => Some(("after", t)),
            ListLink::Before(t) => Some(("before", t)),
        }
    }

    /// `?filters…&after=…`: the list's filters (empty ones left out) and this position.
    pub fn href(&self, filters: &[(&str, &str)]) -> String {
        query_string(filters.iter().copied().chain(self.param()))
    }
}

#[cfg(feature = "ssr")]
pub use convert::{list_cursor, list_link};

#[cfg(feature = "ssr")]
mod convert {
    use super::ListLink;
    use crate::error::AppError;
    use berth_db::lists::{ListCursor, ListKey};
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// `<unix microseconds>.<id>`: exact (PostgreSQL keeps microseconds) and URL-safe.
    fn token(key: ListKey) -> String {
        format!(
            "{}.{}",
            key.updated_at.unix_timestamp_nanos() / 1000,
            key.id
        )
    }

    fn key(field: &str, token: &str) -> Result<ListKey, AppError> {
        let invalid = || AppError::Invalid(format!("'{field}' is not a list position."));
        let (micros, id) = token.trim().split_once('.').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        let updated_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .map_err(|_| invalid())?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(ListKey { updated_at, id })
    }

    /// The cursor of a list page from its `after`/`before` parameters (both empty: the start).
    pub fn list_cursor(after: &str, before: &str) -> Result<ListCursor, AppError> {
        match (after.trim(), before.trim()) {
            ("", "") => Ok(ListCursor::First),
            (a, "") => Ok(ListCursor::After(key("after", a)?)),
            ("", b) => Ok(ListCursor::Before(key("before", b)?)),
            _ => Err(AppError::Invalid(
                "Give at most one of 'after' and 'before'.".into(),
            )),
        }
    }

    pub fn list_link(cursor: ListCursor) -> ListLink {
        match cursor {
            ListCursor::First => ListLink::First,
            ListCursor::After(k) => ListLink::After(token(k)),
            ListCursor::Before(k) => ListLink::Before(token(k)),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cursors_survive_the_url() {
            let k = ListKey {
                updated_at: time::macros::datetime!(2026-12-02 08:15:30.123456 UTC),
                id: Uuid::from_u128(0x1234),
            };
            let ListLink::After(t) = list_link(ListCursor::After(k)) else {
                panic!()
            };
            assert_eq!(list_cursor(&t, "").unwrap(), ListCursor::After(k));
            assert_eq!(list_cursor("", &t).unwrap(), ListCursor::Before(k));
            assert_eq!(list_cursor(" ", "").unwrap(), ListCursor::First);
            for bad in [
                "yesterday",
                "12.nope",
                "x.00000000-0000-0000-0000-000000001234",
            ] {
                assert!(list_cursor(bad, "").is_err(), "{bad}");
            }
            assert!(list_cursor(&t, &t).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_encode_values_and_leave_out_empty_ones() {
        assert_eq!(
            query_string([("q", "Sea View/ü&x"), ("status", ""), ("after", "1.a-b")]),
            "?q=Sea%20View%2F%C3%BC%26x&after=1.a-b"
        );
        assert_eq!(query_string([("q", "")]), "?");
        assert_eq!(
            ListLink::Before("7.x".into()).href(&[("q", "truck")]),
            "?q=truck&before=7.x"
        );
        assert_eq!(ListLink::First.href(&[("q", "")]), "?");
    }
}
