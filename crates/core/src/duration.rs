//! Durations as workflow authors write them: `"500ms"`, `"30s"`, `"15m"`, `"1h"`, `"24h"`.
//!
//! One number and one unit; compound forms such as `"1h30m"` are accepted too, since people
//! write them. Anything else is a validation error at the string's position.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason} (expected e.g. \"500ms\", \"30s\", \"15m\", \"1h\")")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `"500ms"`, `"30s"`, `"15m"`, `"1h"`, `"2d"` and sums such as `"1h30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s.starts_with('-') {
        return Err(err("a duration cannot be negative"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("each part must start with a whole number"));
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| err("the number is too large"))?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        if unit_len == 0 {
            return Err(err("a unit is missing (ms, s, m, h, d)"));
        }
        let (unit, tail) = tail.split_at(unit_len);
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err("unknown unit (use ms, s, m, h or d)")),
        };
        let millis = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| err("it is too long"))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| err("it is too long"))?;
        rest = tail;
    }
    Ok(total)
}

/// Renders a duration for people, everywhere one is shown (messages, `status`, `drive`,
/// `graph`): in the form authors write them (`"15m"`, `"1h30m"`, `"1d40m1s"`), so a value
/// shown can be pasted into a workflow. Below a second it is in milliseconds (`"500ms"`);
/// from a second up, whole seconds (a measured `15.002s` is `"15s"`).
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("15m", 900_000),
            ("1h", 3_600_000),
            ("24h", 86_400_000),
            ("1h30m", 5_400_000),
            ("0s", 0),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for text in [
            "",
            "5",
            "m",
            "5 minutes",
            "5x",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn one_format_for_people_from_milliseconds_to_days() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(15_002), "15s"),
            (Duration::from_secs(7_500), "2h5m"),
            (Duration::from_secs(88_808), "1d40m8s"),
            (Duration::from_secs(86_400), "1d"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "30s", "15m", "1h", "1h30m", "1d"] {
            let d = parse_duration(text).expect("valid");
            assert_eq!(format_duration(d), text);
        }
    }
}
