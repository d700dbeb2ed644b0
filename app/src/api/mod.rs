//! Server functions: guard → parse → call the core → map the error. No SQL here.

pub mod admin;
pub mod codec;
pub mod environments;
#[cfg(feature = "ssr")]
pub mod guard;
pub mod history;
pub mod lifecycle;
pub mod paging;
pub mod people;
pub mod plans;
pub mod provisioning;
pub mod requests;
pub mod session;
pub mod tokens;
pub mod webhooks;

use serde::{Deserialize, Serialize};

/// A moment as sent to the browser: machine-readable and as people read it (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub iso: String,
    pub display: String,
}

#[cfg(feature = "ssr")]
impl From<time::OffsetDateTime> for Stamp {
    fn from(t: time::OffsetDateTime) -> Self {
        use time::macros::format_description;
        let t = t.to_offset(time::UtcOffset::UTC);
        Stamp {
            iso: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            display: t
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .unwrap_or_default(),
        }
    }
}
