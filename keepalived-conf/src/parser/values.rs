//! Value readers with keepalived's range checks and messages
//! (read_unsigned / read_int / read_double / read_timer, addresses, bools).

use super::Parser;
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::IpPrefix;
use nom::IResult;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::combinator::{all_consuming, opt};
use nom::sequence::{pair, preceded};
use std::net::IpAddr;

/// How keepalived 2.2.7 prints timer ranges: microsecond precision, no
/// trailing zeros (`[0.000001, 4294.967295]`).
pub fn fmt_range(v: f64) -> String {
    trim_zeros(&format!("{v:.6}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// strtod-like: the whole word must be a finite number.
/// keepalived's TIMER_MAXIMUM in seconds (ULONG_MAX µs): the bound of the checker timers.
pub(crate) const TIMER_MAXIMUM_SECS: f64 = 18_446_744_073_709.55;

fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_start();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    t.parse::<f64>().ok()
}

impl<'a> Parser<'a> {
    /// Unsigned with range [min, max]; None (after the message) if invalid.
    pub(crate) fn read_unsigned(
        &mut self,
        line: &'a Line,
        i: usize,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let w = self.arg(line, i)?;
        let t = w.trim_start();
        let msg = if t.starts_with('-') {
            format!("negative number '{w}'")
        } else {
            match t.strip_prefix('+').unwrap_or(t).parse::<u64>() {
                Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("number '{w}' outside unsigned integer range")
                }
                Err(_) => format!("invalid number '{w}'"),
                Ok(v) if v > u64::from(u32::MAX) => {
                    format!("number '{w}' outside unsigned integer range")
                }
                Ok(v) if v < min || v > max => {
                    format!("number '{w}' outside range [{min}, {max}]")
                }
                Ok(v) => return Some(v),
            }
        };
        self.warn_at(DiagKind::InvalidValue, line, i, msg);
        None
    }

    pub(crate) fn read_u32(&mut self, line: &'a Line, i: usize, min: u32, max: u32) -> Option<u32> {
        self.read_unsigned(line, i, u64::from(min), u64::from(max))
            .and_then(|v| u32::try_from(v).ok())
    }

    pub(crate) fn read_int(&mut self, line: &'a Line, i: usize, min: i64, max: i64) -> Option<i64> {
        let w = self.arg(line, i)?;
        let msg = match w.parse::<i64>() {
            Err(_) => format!("invalid number '{w}'"),
            Ok(v) if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) => {
                format!("number '{w}' outside integer range")
            }
            Ok(v) if v < min || v > max => format!("number '{w}' outside range [{min}, {max}]"),
            Ok(v) => return Some(v),
        };
        self.warn_at(DiagKind::InvalidValue, line, i, msg);
        None
    }

    pub(crate) fn read_i32(&mut self, line: &'a Line, i: usize, min: i32, max: i32) -> Option<i32> {
        self.read_int(line, i, i64::from(min), i64::from(max))
            .and_then(|v| i32::try_from(v).ok())
    }

    pub(crate) fn read_double(
        &mut self,
        line: &'a Line,
        i: usize,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        let w = self.arg(line, i)?;
        let msg = match parse_double(w) {
            None => format!("invalid number '{w}'"),
            Some(v) if v < min || v > max => format!(
                "number '{w}' outside range [{}, {}]",
                fmt_range(min),
                fmt_range(max)
            ),
            Some(v) => return Some(v),
        };
        self.warn_at(DiagKind::InvalidValue, line, i, msg);
        None
    }

    /// A timer in seconds (µs resolution); range given in seconds.
    pub(crate) fn read_timer(
        &mut self,
        line: &'a Line,
        i: usize,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        self.read_double(line, i, min, max)
            .map(|v| (v * 1_000_000.0).round() / 1_000_000.0)
    }

    /// A port (0..65535).
    pub(crate) fn read_port(&mut self, line: &'a Line, i: usize) -> Option<u16> {
        self.read_unsigned(line, i, 0, 65535)
            .and_then(|v| u16::try_from(v).ok())
    }

    /// Optional on/off argument of a flag keyword (absent = true).
    pub(crate) fn read_flag(&mut self, line: &'a Line, i: usize) -> Option<bool> {
        match line.word(i) {
            None => Some(true),
            Some(w) => match check_true_false(w) {
                Some(b) => Some(b),
                None => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        line,
                        i,
                        format!("Invalid {} parameter {}", line.first(), w),
                    );
                    None
                }
            },
        }
    }

    /// An address; reports keepalived's generic message when invalid.
    pub(crate) fn read_ip(&mut self, line: &'a Line, i: usize) -> Option<IpAddr> {
        let w = self.arg(line, i)?;
        match parse_ip(w) {
            Some(a) => Some(a),
            None => {
                self.warn_at(
                    DiagKind::InvalidValue,
                    line,
                    i,
                    format!("Invalid {} address {}", line.first(), w),
                );
                None
            }
        }
    }

    /// Word `i`; when it is absent, keepalived's own (non-fatal) complaint `missing`.
    pub(crate) fn word_or(&mut self, line: &'a Line, i: usize, missing: &str) -> Option<&'a str> {
        let w = line.word(i);
        if w.is_none() {
            self.warn(DiagKind::MissingParameter, line, missing);
        }
        w
    }

    pub(crate) fn read_string(&mut self, line: &'a Line, i: usize) -> Option<String> {
        self.arg(line, i).map(str::to_string)
    }
}

/// on/true/yes or off/false/no.
pub fn check_true_false(s: &str) -> Option<bool> {
    match s {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// An IPv4 or IPv6 address (IPv6 may be written in `[ ]`, and may carry a
/// `%scope` suffix which is dropped).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    let s = s.split('%').next().unwrap_or(s);
    s.parse().ok()
}

fn prefix(input: &str) -> IResult<&str, (&str, Option<&str>)> {
    all_consuming(pair(
        take_while1(|c: char| c != '/'),
        opt(preceded(
            char('/'),
            take_while1(|c: char| c.is_ascii_digit()),
        )),
    ))(input)
}

/// `IP[/LEN]`; returns the prefix and whether the length was implicit.
pub fn parse_prefix(s: &str) -> Option<(IpPrefix, bool)> {
    let (_, (addr, len)) = prefix(s).ok()?;
    let addr = parse_ip(addr)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len {
        None => Some((
            IpPrefix {
                addr,
                prefix_len: max,
            },
            true,
        )),
        Some(l) => {
            let l: u8 = l.parse().ok()?;
            (l <= max).then_some((
                IpPrefix {
                    addr,
                    prefix_len: l,
                },
                false,
            ))
        }
    }
}

/// `A.B.C.D-N` / `X::Y-Z` last octet/hextet ranges, or a single address.
pub fn parse_range(s: &str) -> Option<(IpAddr, IpAddr)> {
    let Some((base, last)) = s.rsplit_once('-') else {
        let a = parse_ip(s)?;
        return Some((a, a));
    };
    let first = parse_ip(base)?;
    match first {
        IpAddr::V4(v4) => {
            let n: u8 = last.parse().ok()?;
            let mut o = v4.octets();
            if n < o[3] {
                return None;
            }
            o[3] = n;
            Some((first, IpAddr::from(o)))
        }
        IpAddr::V6(v6) => {
            let n = u16::from_str_radix(last, 16).ok()?;
            let mut seg = v6.segments();
            if n < seg[7] {
                return None;
            }
            seg[7] = n;
            Some((first, IpAddr::from(seg)))
        }
    }
}

/// Why keepalived's `alloc_strvec_quoted_escaped` refused a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotedError {
    /// `String '%s': missing terminating %c`.
    MissingTerminating(char),
    /// `Missing escape char at end: '%s'`.
    MissingEscape,
}

/// keepalived's `alloc_strvec_quoted_escaped`, byte for byte: words split on blanks, `"…"`
/// and `'…'` quote (a closing quote continues the word), `\` escapes everywhere (also inside
/// either quote): `\a \b \E \f \n \r \t \v`, `\xHH…` (every hex digit that follows),
/// `\cC` (control C), `\nnn` (up to three octal digits), `\C` = C. Words are bytes: an
/// escape may make one that is not UTF-8.
pub fn split_quoted_escaped(src: &str) -> Result<Vec<Vec<u8>>, QuotedError> {
    split_quoted_escaped_bytes(src.as_bytes())
}

/// [`split_quoted_escaped`] of bytes (a word the first split made, split again).
pub fn split_quoted_escaped_bytes(b: &[u8]) -> Result<Vec<Vec<u8>>, QuotedError> {
    const WHITE: &[u8] = b" \t\x0c\n\r\x0b";
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && WHITE.contains(&b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote = 0u8;
        while i < b.len() {
            let special = |c: u8| match quote {
                b'"' => c == b'"' || c == b'\\',
                b'\'' => c == b'\'' || c == b'\\',
                _ => WHITE.contains(&c) || c == b'\'' || c == b'"' || c == b'\\',
            };
            let Some(j) = b[i..].iter().position(|&c| special(c)).map(|p| p + i) else {
                if quote != 0 {
                    return Err(QuotedError::MissingTerminating(quote as char));
                }
                word.extend_from_slice(&b[i..]);
                i = b.len();
                break;
            };
            word.extend_from_slice(&b[i..j]);
            i = j;
            if b[i] == b'\\' {
                i += 1;
                let Some(&c) = b.get(i) else {
                    return Err(QuotedError::MissingEscape);
                };
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                let byte = if c == b'x' && b.get(i + 1).and_then(|&n| hex(n)).is_some() {
                    i += 1;
                    let mut v = 0u8;
                    while let Some(d) = b.get(i).and_then(|&n| hex(n)) {
                        v = (v << 4) | d;
                        i += 1;
                    }
                    v
                } else if c == b'c' && i + 1 < b.len() {
                    i += 2;
                    b[i - 1] & 0x1f
                } else if (b'0'..=b'7').contains(&c) {
                    let mut v = c - b'0';
                    i += 1;
                    for _ in 0..2 {
                        match b.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = (v << 3).wrapping_add(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    v
                } else {
                    i += 1;
                    match c {
                        b'a' => 0x07,
                        b'b' => 0x08,
                        b'E' => 0x1b,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 0x0b,
                        other => other,
                    }
                };
                word.push(byte);
                continue;
            }
            if quote != 0 {
                i += 1;
                quote = 0;
                continue;
            }
            if b[i] == b'"' || b[i] == b'\'' {
                quote = b[i];
                i += 1;
                continue;
            }
            break;
        }
        // keepalived keeps C strings: a word ends at an escaped NUL.
        if let Some(nul) = word.iter().position(|&c| c == 0) {
            word.truncate(nul);
        }
        out.push(word);
    }
    Ok(out)
}

/// inet_aton(3): one to four parts (decimal, 0octal or 0xhex), the last filling the rest.
pub(crate) fn inet_aton(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| {
            if let Some(h) = p.strip_prefix("0x").or(p.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok()
            } else if p.len() > 1 && p.starts_with('0') {
                u64::from_str_radix(&p[1..], 8).ok()
            } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&n| n > 255) || *last >= 1u64 << (8 * (4 - head.len())) {
        return None;
    }
    let mut v = 0u64;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i);
    }
    Some((v | last) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(fmt_range(0.000001), "0.000001");
        assert_eq!(fmt_range(4294.967295), "4294.967295");
        assert_eq!(fmt_range(255.0), "255");
    }

    #[test]
    fn prefixes_and_ranges() {
        assert_eq!(parse_prefix("10.0.0.1/24").unwrap().0.prefix_len, 24);
        assert!(parse_prefix("10.0.0.1").unwrap().1);
        assert!(parse_prefix("192.168.100./24").is_none());
        assert!(parse_prefix("10.0.0.1/33").is_none());
        let (a, b) = parse_range("10.0.0.1-10").unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("10.0.0.1".into(), "10.0.0.10".into())
        );
        assert!(parse_range("10.0.0.5-2").is_none());
        assert_eq!(
            parse_range("2001:db8::1-a").unwrap().1.to_string(),
            "2001:db8::a"
        );
    }

    fn words(s: &str) -> Vec<String> {
        split_quoted_escaped(s)
            .unwrap()
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    #[test]
    fn quoted_escaped_like_keepalived() {
        // A closing quote continues the word; escapes work inside either quote.
        assert_eq!(words(r#"x"y z"w 'a\'b' "c\"d""#), ["xy zw", "a'b", "c\"d"]);
        // \x takes every hex digit that follows (wrapping to a byte); \x alone is x.
        assert_eq!(
            split_quoted_escaped(r"\x4142 \xg").unwrap(),
            [vec![0x42], b"xg".to_vec()]
        );
        // \c: control character; \c at the end is c; octal up to 3 digits.
        assert_eq!(
            split_quoted_escaped(r"\cA \c").unwrap(),
            [vec![1], b"c".to_vec()]
        );
        assert_eq!(
            split_quoted_escaped(r"\0101 \c ").unwrap(),
            [vec![0o10, b'1'], vec![]]
        );
        // A quote opened at the very end is not an error (the loop ends first).
        assert_eq!(words("abc\""), ["abc"]);
        assert_eq!(
            split_quoted_escaped("a \"b"),
            Err(QuotedError::MissingTerminating('"'))
        );
        assert_eq!(split_quoted_escaped("a\\"), Err(QuotedError::MissingEscape));
        assert_eq!(words(r#""" ''"#), ["", ""]);
    }

    #[test]
    fn escaped_split() {
        assert_eq!(words("/bin/x 'a b' \"c\\td\""), ["/bin/x", "a b", "c\td"]);
        assert_eq!(words("a\\x41 \\101"), ["aA", "A"]);
    }
}
