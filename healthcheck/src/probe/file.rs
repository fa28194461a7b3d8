//! FILE_CHECK: the number in a `track_file` (keepalived's track_file.c).
//!
//! The file holds an integer (strtol base 0; missing or empty file: 0).
//! With weight 0 a non-zero value means down (`reverse`: zero means down).
//! Otherwise `value * weight` (negated with `reverse`) is added to the
//! real's weight, and at or below -254 the real is down.

use super::Outcome;
use std::path::PathBuf;

/// FILE_CHECK: a file's number decides.
#[derive(Debug)]
pub struct FileProbe {
    /// The tracked file.
    pub path: PathBuf,
    /// Multiplier of its value (0: non-zero means down).
    pub weight: i32,
    /// A non-zero value means up instead.
    pub reverse: bool,
}

/// At or below this the tracked value puts the checker in fault.
pub const WEIGHT_FAULT: i64 = -254;

/// strtol(buf, NULL, 0) on the first 127 bytes; invalid → None (ignored).
pub fn parse_value(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        // strtol returns 0 when there is no number.
        return Some(0);
    }
    let v = i64::from_str_radix(&digits[..end], radix).ok()?;
    let v = if neg { -v } else { v };
    (v >= i32::MIN as i64 && v <= i32::MAX as i64 + 1).then_some(v)
}

impl FileProbe {
    /// The file's number, if it holds one.
    pub fn read_value(&self) -> Option<i64> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let n = bytes.len().min(127);
                parse_value(&String::from_utf8_lossy(&bytes[..n]))
            }
            Err(_) => Some(0),
        }
    }

    /// Up/down and weight contribution for a value.
    pub fn evaluate(&self, v: i64) -> (bool, i32) {
        if self.weight == 0 {
            let fault = (v != 0) != self.reverse;
            return (!fault, 0);
        }
        let mult = if self.reverse { -1 } else { 1 };
        let s = v.saturating_mul(self.weight as i64 * mult);
        if s <= WEIGHT_FAULT {
            (false, 0)
        } else {
            (true, s.min(65535) as i32)
        }
    }

    /// One reading.
    pub fn run(&self) -> Outcome {
        let Some(v) = self.read_value() else {
            return Outcome::fail(format!(
                "Invalid number read from {} - ignoring",
                self.path.display()
            ));
        };
        let (up, delta) = self.evaluate(v);
        let mut o = if up {
            Outcome::ok(format!("tracked file {} value {v}", self.path.display()))
        } else {
            Outcome::fail(format!(
                "tracked file {} now FAULT state (value {v})",
                self.path.display()
            ))
        };
        o.weight_delta = Some(delta);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_like_parsing() {
        assert_eq!(parse_value("12\n"), Some(12));
        assert_eq!(parse_value("  -3 trailing"), Some(-3));
        assert_eq!(parse_value("0x10"), Some(16));
        assert_eq!(parse_value("010"), Some(8));
        assert_eq!(parse_value(""), Some(0));
        assert_eq!(parse_value("abc"), Some(0));
        assert_eq!(parse_value("99999999999"), None);
    }

    #[test]
    fn weight_zero_and_weighted_values() {
        let p = |weight, reverse| FileProbe {
            path: PathBuf::new(),
            weight,
            reverse,
        };
        assert_eq!(p(0, false).evaluate(0), (true, 0));
        assert_eq!(p(0, false).evaluate(1), (false, 0));
        assert_eq!(p(0, true).evaluate(0), (false, 0));
        assert_eq!(p(10, false).evaluate(3), (true, 30));
        assert_eq!(p(10, true).evaluate(3), (true, -30));
        assert_eq!(p(1, false).evaluate(-254), (false, 0));
    }
}
