//! Settings read once at start-up from `BERTH_*`-style variables. [`Env`] reads through a lookup
//! function (the process environment in production, a map in tests) and collects **every**
//! problem instead of stopping at the first, so a misconfigured deployment is fixed in one go.
//! Secrets come back as [`SecretString`]/[`DatabaseUrl`], whose `Debug` never shows them.

use std::{fmt, str::FromStr, time::Duration};

pub use secrecy::{ExposeSecret, SecretString};

/// Every configuration problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct Problems(pub Vec<String>);

/// One reader's problems added to another's ([`Env::extend`]).
impl IntoIterator for Problems {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Reads settings through a lookup function and remembers what is wrong with them.
pub struct Env<F> {
    get: F,
    problems: Vec<String>,
}

impl Env<fn(&str) -> Option<String>> {
    /// Reads the process environment.
    pub fn process() -> Self {
        Env::new(|k| std::env::var(k).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Self {
            get,
            problems: Vec::new(),
        }
    }

    /// The raw lookup, for readers of their own (e.g. single sign-on) that report separately.
    pub fn lookup(&self) -> &F {
        &self.get
    }

    /// The trimmed value; unset and blank are the same (an empty `KEY=` in a file means unset).
    pub fn optional(&self, key: &str) -> Option<String> {
        (self.get)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A value that must be set; `what` tells the operator what belongs there.
    pub fn required(&mut self, key: &str, what: &str) -> String {
        self.optional(key).unwrap_or_else(|| {
            self.problem(format!("{key}: missing ({what})"));
            String::new()
        })
    }

    /// A required secret. Its value never appears in a problem.
    pub fn secret(&mut self, key: &str, what: &str) -> SecretString {
        SecretString::from(self.required(key, what))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`); `default` when unset.
    pub fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.optional(key).as_deref() {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                self.problem(format!("{key}: expected true or false, got '{other}'"));
                default
            }
        }
    }

    /// Any `FromStr` value; `expected` describes a valid one in the problem (e.g. "a number").
    pub fn parse<T: FromStr>(&mut self, key: &str, expected: &str) -> Option<T> {
        let raw = self.optional(key)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(format!("{key}: expected {expected}, got '{raw}'"));
                None
            }
        }
    }

    /// A whole number above zero; `default` when unset or invalid.
    pub fn positive(&mut self, key: &str, default: u64) -> u64 {
        match self.optional(key) {
            None => default,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    self.problem(format!(
                        "{key}: expected a positive whole number, got '{raw}'"
                    ));
                    default
                }),
        }
    }

    /// A duration given in milliseconds, above zero; `default_ms` when unset or invalid.
    pub fn millis(&mut self, key: &str, default_ms: u64) -> Duration {
        match self.optional(key) {
            None => Duration::from_millis(default_ms),
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_millis(n),
                _ => {
                    self.problem(format!(
                        "{key}: expected a positive number of milliseconds, got '{raw}'"
                    ));
                    Duration::from_millis(default_ms)
                }
            },
        }
    }

    /// `DATABASE_URL`, required, a `postgres://` URL.
    pub fn database_url(&mut self) -> DatabaseUrl {
        const KEY: &str = "DATABASE_URL";
        let Some(raw) = self.optional(KEY) else {
            self.problem(format!(
                "{KEY}: missing (postgres://user:password@host:port/db)"
            ));
            return DatabaseUrl::unset();
        };
        DatabaseUrl::parse(raw).unwrap_or_else(|e| {
            self.problem(format!("{KEY}: {e}"));
            DatabaseUrl::unset()
        })
    }

    /// Records a problem found by the caller (a rule across several values).
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    /// Records problems found by another reader.
    pub fn extend(&mut self, problems: impl IntoIterator<Item = String>) {
        self.problems.extend(problems);
    }

    /// The problems so far, to check the whole set before building anything from it.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// `value` when nothing was wrong, else every problem.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Problems> {
        if self.problems.is_empty() {
            Ok(value())
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// The PostgreSQL URL, password included: a secret. `Debug` shows only that it is set; the one
/// place that connects calls [`DatabaseUrl::expose`].
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Checks the scheme only (the driver parses the rest when it connects); the error never
    /// repeats the URL, which may hold a password.
    pub fn parse(raw: impl Into<String>) -> Result<Self, &'static str> {
        let raw = raw.into();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self(SecretString::from(raw)))
        } else {
            Err("must start with postgres://")
        }
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The placeholder behind a reported problem (never used: `finish` fails first).
    fn unset() -> Self {
        Self(SecretString::from(String::new()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |k| map.get(k).cloned())
    }

    #[test]
    fn every_problem_is_collected_and_listed() {
        let mut e = env(&[
            ("FLAG", "maybe"),
            ("N", "-3"),
            ("MS", "soon"),
            ("COUNT", "many"),
            ("BLANK", "  "),
        ]);
        assert!(!e.flag("FLAG", false));
        assert_eq!(e.positive("N", 7), 7);
        assert_eq!(e.millis("MS", 250), Duration::from_millis(250));
        assert_eq!(e.parse::<u32>("COUNT", "a number"), None);
        assert_eq!(e.required("BLANK", "something"), "");
        let _ = e.database_url();
        e.problem("a rule across values");
        let err = e.finish(|| ()).unwrap_err();
        assert_eq!(err.0.len(), 7, "{err}");
        let text = err.to_string();
        assert!(text.starts_with("invalid configuration:\n  - FLAG: expected true or false"));
        for needle in [
            "N: expected a positive whole number, got '-3'",
            "MS: expected a positive number of milliseconds",
            "COUNT: expected a number, got 'many'",
            "BLANK: missing (something)",
            "DATABASE_URL: missing",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    #[test]
    fn values_defaults_and_flags() {
        let mut e = env(&[("A", " x "), ("ON", "yes"), ("OFF", "0"), ("N", "12")]);
        assert_eq!(e.optional("A").as_deref(), Some("x"));
        assert_eq!(e.optional("UNSET"), None);
        assert!(e.flag("ON", false));
        assert!(!e.flag("OFF", true));
        assert!(e.flag("UNSET", true));
        assert_eq!(e.positive("N", 1), 12);
        assert_eq!(e.parse::<u32>("N", "a number"), Some(12));
        assert_eq!(e.millis("UNSET", 2000), Duration::from_millis(2000));
        assert_eq!(e.finish(|| 42), Ok(42));
    }

    #[test]
    fn secrets_are_never_shown() {
        let mut e = env(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/berth"),
            ("TOKEN", "s3cret"),
        ]);
        let url = e.database_url();
        let token = e.secret("TOKEN", "a token");
        assert_eq!(url.expose(), "postgres://u:hunter2@db/berth");
        assert_eq!(token.expose_secret(), "s3cret");
        assert!(!format!("{url:?} {token:?}").contains("hunter2"));
        assert!(!format!("{token:?}").contains("s3cret"));

        let mut e = env(&[("DATABASE_URL", "mysql://u:hunter2@db/berth")]);
        let _ = e.database_url();
        let err = e.finish(|| ()).unwrap_err().to_string();
        assert!(
            err.contains("DATABASE_URL: must start with postgres://"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}
