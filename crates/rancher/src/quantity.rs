//! Kubernetes resource quantities (`16`, `15500m`, `1.5`, `64Gi`, `129e6`): how Rancher reports
//! a cluster's capacity and how project quotas are written. Parsed exactly (integer arithmetic,
//! no floats), so the portal can compare a plan's quotas with what a cluster has.
//!
//! The grammar is Kubernetes' own: an optionally signed decimal number (`1`, `1.5`, `.5`, `1.`)
//! and one suffix: binary `Ki Mi Gi Ti Pi Ei`, decimal `n u m "" k M G T P E`, or a decimal
//! exponent `e<int>`/`E<int>` (`E` alone is exa). Negative quantities are refused: nothing we read
//! or write may be below zero.

/// A string that is not a Kubernetes quantity, or one that does not fit the unit asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a usable Kubernetes quantity: {reason}")]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

impl QuantityError {
    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// A CPU quantity in millicores (`"16"` → 16000, `"15500m"` → 15500, `"1.5"` → 1500), rounded
/// up like Kubernetes' `MilliValue()` (`"100u"` → 1).
pub fn parse_cpu(s: &str) -> Result<u64, QuantityError> {
    scaled(s, 3)
}

/// A memory quantity in bytes (`"64Gi"`, `"65536Mi"`, `"64G"`, `"129e6"`, `"123Ki"`), rounded
/// up like Kubernetes' `Value()` (`"1500m"` → 2).
pub fn parse_memory(s: &str) -> Result<u64, QuantityError> {
    scaled(s, 0)
}

/// Millicores as Kubernetes writes them: whole cores as `"16"`, otherwise `"15500m"`.
/// [`parse_cpu`] reads it back to the same number.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes with the largest binary suffix that divides them exactly (`"64Gi"`, `"1536Ki"`), plain
/// bytes otherwise. [`parse_memory`] reads it back to the same number.
pub fn format_memory(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    SUFFIXES
        .iter()
        .find(|(_, shift)| bytes != 0 && bytes.is_multiple_of(1u64 << shift))
        .map_or_else(
            || bytes.to_string(),
            |(suffix, shift)| format!("{}{suffix}", bytes >> shift),
        )
}

/// More significant digits than any real quantity has; the limit keeps
/// `mantissa * 2^60` inside `u128`.
const MAX_DIGITS: usize = 20;

/// `mantissa * 10^exp10 * 2^exp2`, exactly.
#[derive(Debug, PartialEq, Eq)]
struct Quantity {
    mantissa: u128,
    exp10: i64,
    exp2: u32,
}

/// The quantity times `10^scale`, rounded up to a whole number.
fn scaled(input: &str, scale: i64) -> Result<u64, QuantityError> {
    let fail = |reason| QuantityError {
        input: input.to_owned(),
        reason,
    };
    let q = parse(input).map_err(fail)?;
    if q.mantissa == 0 {
        return Ok(0);
    }
    // At most 2^67 * 2^60: fits.
    let n = q.mantissa << q.exp2;
    let exp = q.exp10 + scale;
    let value = if exp >= 0 {
        u32::try_from(exp)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .and_then(|p| n.checked_mul(p))
            .ok_or_else(|| fail("too large"))?
    } else {
        match u32::try_from(-exp).ok().and_then(|e| 10u128.checked_pow(e)) {
            Some(divisor) => n.div_ceil(divisor),
            // Below 10^-38 of the unit, yet above zero: rounds up to one.
            None => 1,
        }
    };
    u64::try_from(value).map_err(|_| fail("too large"))
}

fn parse(s: &str) -> Result<Quantity, &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    let s = match s.as_bytes()[0] {
        b'+' => &s[1..],
        b'-' => return Err("negative"),
        _ => s,
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') {
        return Err("more than one decimal point");
    }
    if int.is_empty() && frac.is_empty() {
        return Err("no number");
    }
    // Leading and trailing zeros carry no precision; drop them before counting digits.
    let frac = frac.trim_end_matches('0');
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_DIGITS {
        return Err("too many significant digits");
    }
    let mantissa = significant
        .bytes()
        .fold(0u128, |m, d| m * 10 + u128::from(d - b'0'));
    let frac_len = i64::try_from(frac.len()).map_err(|_| "too long")?;
    let (exp10, exp2) = suffix_exponents(suffix)?;
    Ok(Quantity {
        mantissa,
        exp10: exp10 - frac_len,
        exp2,
    })
}

/// `(power of ten, power of two)` of a suffix.
fn suffix_exponents(suffix: &str) -> Result<(i64, u32), &'static str> {
    Ok(match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .ok_or("unknown suffix (expected Ki, Mi, Gi, m, k, M, G, … or e<exponent>)")?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("unknown suffix (expected Ki, Mi, Gi, m, k, M, G, … or e<exponent>)");
            }
            let e: i64 = exponent.parse().map_err(|_| "exponent out of range")?;
            if e.abs() > 1000 {
                return Err("exponent out of range");
            }
            (e, 0)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    #[test]
    fn parses_cpu_quantities_in_millicores() {
        for (input, millis) in [
            ("16", 16_000),
            ("15500m", 15_500),
            ("1.5", 1_500),
            (".5", 500),
            ("1.", 1_000),
            ("+2", 2_000),
            ("0", 0),
            ("0.000", 0),
            ("250m", 250),
            ("2k", 2_000_000),
            ("1e3", 1_000_000),
            ("5E-1", 500),
            ("100u", 1),
            ("1n", 1),
            ("0.0001", 1),
            ("1500000u", 1_500),
            ("64.000000000000000000000000000", 64_000),
            ("000000000000000000000000064", 64_000),
        ] {
            assert_eq!(parse_cpu(input), Ok(millis), "{input}");
        }
    }

    #[test]
    fn parses_memory_quantities_in_bytes() {
        for (input, bytes) in [
            ("64Gi", 64 * GI),
            ("65536Mi", 64 * GI),
            ("68719476736", 64 * GI),
            ("64G", 64_000_000_000),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129E6", 129_000_000),
            ("123Ki", 125_952),
            ("1.5Ki", 1_536),
            ("0.5Gi", GI / 2),
            ("256Gi", 256 * GI),
            ("1Ei", 1 << 60),
            ("1E", 1_000_000_000_000_000_000),
            ("1500m", 2),
            ("128974848000m", 128_974_848),
            ("1e-400", 1),
            ("0e999", 0),
        ] {
            assert_eq!(parse_memory(input), Ok(bytes), "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for (input, reason) in [
            ("", "empty"),
            ("-1", "negative"),
            ("-1Gi", "negative"),
            ("Gi", "no number"),
            (".", "no number"),
            ("1.2.3", "more than one decimal point"),
            ("64GB", "unknown suffix"),
            ("64gi", "unknown suffix"),
            ("1K", "unknown suffix"),
            (" 16", "no number"),
            ("16 ", "unknown suffix"),
            ("1e", "unknown suffix"),
            ("1e+", "unknown suffix"),
            ("1e1.5", "unknown suffix"),
            ("1e5000", "exponent out of range"),
            ("lots", "no number"),
            ("123456789012345678901", "too many significant digits"),
            ("20E", "too large"),
            ("16Ei", "too large"),
            ("1e30", "too large"),
        ] {
            let err = parse_memory(input).expect_err(input);
            assert!(err.reason.starts_with(reason), "{input}: {err}");
            assert_eq!(err.input(), input);
        }
        assert_eq!(
            parse_cpu("1e17").unwrap_err().to_string(),
            "\"1e17\" is not a usable Kubernetes quantity: too large",
            "1e17 cores do not fit in u64 millicores"
        );
        assert!(parse_memory("1e17").is_ok());
    }

    #[test]
    fn formats_round_trip() {
        for millis in [
            0,
            1,
            250,
            999,
            1_000,
            1_500,
            16_000,
            15_500,
            64_000,
            u64::MAX,
        ] {
            assert_eq!(parse_cpu(&format_cpu(millis)), Ok(millis), "{millis}");
        }
        assert_eq!(format_cpu(16_000), "16");
        assert_eq!(format_cpu(15_500), "15500m");
        for bytes in [
            0,
            1,
            1_023,
            1_024,
            1_536,
            125_952,
            64 * GI,
            64_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(parse_memory(&format_memory(bytes)), Ok(bytes), "{bytes}");
        }
        assert_eq!(format_memory(64 * GI), "64Gi");
        assert_eq!(format_memory(125_952), "123Ki");
        assert_eq!(
            format_memory(1_536),
            "1536",
            "no suffix divides 1.5 KiB exactly"
        );
        assert_eq!(format_memory(0), "0");
    }
}
