//! Durations written the way Helm and Rancher write them (`90s`, `10m`, `1h30m`).

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected e.g. \"90s\", \"10m\" or \"1h30m\"")]
pub struct DurationError {
    input: String,
}

/// Parses `<n>h`, `<n>m`, `<n>s` components in that order (at least one), e.g. `1h30m`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_owned(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_rank = 0u8;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, factor) = match c {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return Err(err()),
        };
        if digits.is_empty() || rank <= last_rank {
            return Err(err());
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        digits.clear();
        last_rank = rank;
    }
    if !digits.is_empty() {
        return Err(err());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration as a Go duration string in whole seconds (`600s`), the form Rancher's
/// install body requires (a number instead of a string fails to decode there).
pub fn format_go_duration(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_helm_style_durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "10", "m", "10x", "5s1m", "1m1m", "-1s", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_seconds() {
        assert_eq!(format_go_duration(Duration::from_secs(600)), "600s");
        assert_eq!(format_go_duration(Duration::from_millis(10)), "1s");
    }
}
