//! `~SEQ(var[, start][, step], end)`, `~SEQx(...)` and `~LST(...)` line
//! generators: the rest of the line is repeated once per value with the
//! variable(s) defined.

use nom::IResult;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while};
use nom::character::complete::char;
use nom::multi::separated_list1;
use nom::sequence::{delimited, preceded};

/// One generator: for each iteration, the definitions to set.
#[derive(Debug, PartialEq, Eq)]
pub struct Generator {
    /// Per iteration, the (name, value) definitions to set.
    pub iterations: Vec<Vec<(String, String)>>,
    /// The text after the closing `)`, repeated once per iteration.
    pub rest: String,
}

/// Why a generator was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqError {
    /// Malformed; the text says how.
    Invalid(String),
    /// More iterations than allowed.
    TooMany,
}

fn blanks(i: &str) -> IResult<&str, &str> {
    take_while(|c| c == ' ' || c == '\t')(i)
}

/// The text between `(` and the matching `)` (no nesting of parentheses).
fn args(i: &str) -> IResult<&str, &str> {
    delimited(
        preceded(blanks, char('(')),
        take_till(|c| c == ')'),
        char(')'),
    )(i)
}

/// strtol(…, 0): decimal, 0x hex or 0 octal, with an optional sign.
fn c_long(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Parses a line starting with `~SEQ`, `~SEQx` or `~LST`. `args_expand`
/// resolves definitions inside the parentheses first, as keepalived does.
pub fn parse_generator(
    line: &str,
    max_iterations: usize,
    args_expand: &mut dyn FnMut(&str) -> String,
) -> Result<Generator, SeqError> {
    let invalid = || SeqError::Invalid(line.to_string());
    let (after_kw, kw) = alt((
        tag::<&str, &str, nom::error::Error<&str>>("~SEQx"),
        tag("~SEQ"),
        tag("~LST"),
    ))(line)
    .map_err(|_| invalid())?;
    let (rest, inner) = args(after_kw).map_err(|_| invalid())?;
    let rest = rest.trim_start_matches([' ', '\t']).to_string();
    let inner = args_expand(inner);
    let iterations = if kw == "~LST" {
        list_iterations(&inner).ok_or_else(invalid)?
    } else {
        seq_iterations(&inner, kw == "~SEQx", max_iterations)?
    };
    if iterations.len() > max_iterations {
        return Err(SeqError::TooMany);
    }
    Ok(Generator { iterations, rest })
}

fn seq_iterations(
    inner: &str,
    hex: bool,
    max_iterations: usize,
) -> Result<Vec<Vec<(String, String)>>, SeqError> {
    let invalid = || SeqError::Invalid(inner.to_string());
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let var = parts.first().copied().unwrap_or("");
    if var.is_empty() || var.contains([' ', '\t']) || parts.len() < 2 || parts.len() > 4 {
        return Err(invalid());
    }
    let nums: Option<Vec<i64>> = parts[1..].iter().map(|p| c_long(p)).collect();
    let nums = nums.ok_or_else(invalid)?;
    let (start, step, end) = match nums.as_slice() {
        [end] => (
            if *end < 0 { -1 } else { 1 },
            if *end < 1 { -1 } else { 1 },
            *end,
        ),
        [start, end] => (*start, if start <= end { 1 } else { -1 }, *end),
        [start, step, end] => {
            if *step == 0 || (start < end && *step < 0) || (start > end && *step > 0) {
                return Err(invalid());
            }
            (*start, *step, *end)
        }
        _ => return Err(invalid()),
    };
    if hex && (start < 0 || end < 0) {
        return Err(invalid());
    }
    // Count first: a huge range must not be materialised.
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if count > max_iterations as i128 {
        return Err(SeqError::TooMany);
    }
    let mut out = Vec::new();
    let mut v = start;
    loop {
        let text = if hex { format!("{v:x}") } else { v.to_string() };
        out.push(vec![(var.to_string(), text)]);
        if out.len() > max_iterations {
            return Err(SeqError::TooMany);
        }
        let Some(next) = v.checked_add(step) else {
            break;
        };
        if (step > 0 && next > end) || (step < 0 && next < end) {
            break;
        }
        v = next;
    }
    Ok(out)
}

fn brace_group(i: &str) -> IResult<&str, Vec<&str>> {
    delimited(
        preceded(blanks, char('{')),
        separated_list1(char(','), take_till(|c| c == ',' || c == '}')),
        preceded(blanks, char('}')),
    )(i)
}

/// `var, v1, v2…` or `{a,b},{1,2},{3,4}`.
fn list_iterations(inner: &str) -> Option<Vec<Vec<(String, String)>>> {
    let trimmed = inner.trim_start();
    if trimmed.starts_with('{') {
        let (rest, groups) =
            separated_list1(preceded(blanks, char(',')), brace_group)(trimmed).ok()?;
        if !rest.trim().is_empty() || groups.len() < 2 {
            return None;
        }
        let vars: Vec<String> = groups[0].iter().map(|v| v.trim().to_string()).collect();
        let mut out = Vec::new();
        for g in &groups[1..] {
            if g.len() != vars.len() {
                return None;
            }
            out.push(
                vars.iter()
                    .cloned()
                    .zip(g.iter().map(|v| v.trim().to_string()))
                    .collect(),
            );
        }
        Some(out)
    } else {
        let mut parts = inner.split(',').map(str::trim);
        let var = parts.next()?.to_string();
        if var.is_empty() {
            return None;
        }
        let out: Vec<_> = parts.map(|v| vec![(var.clone(), v.to_string())]).collect();
        if out.is_empty() { None } else { Some(out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(line: &str) -> Vec<String> {
        let g = parse_generator(line, 1000, &mut |s| s.to_string()).unwrap();
        g.iterations
            .into_iter()
            .map(|it| it.into_iter().map(|(_, v)| v).collect::<Vec<_>>().join(","))
            .collect()
    }

    #[test]
    fn seq_forms() {
        assert_eq!(values("~SEQ(i, 3) x"), ["1", "2", "3"]);
        assert_eq!(values("~SEQ(i, 5, 3) x"), ["5", "4", "3"]);
        assert_eq!(values("~SEQ(i, 0, 5, 12) x"), ["0", "5", "10"]);
        assert_eq!(values("~SEQx(i, 9, 11) x"), ["9", "a", "b"]);
        assert!(parse_generator("~SEQ(i, 1, -1, 5) x", 10, &mut |s| s.to_string()).is_err());
        assert_eq!(
            parse_generator("~SEQ(i,1,2)  rs $i", 10, &mut |s| s.to_string())
                .unwrap()
                .rest,
            "rs $i"
        );
    }

    #[test]
    fn lst_forms() {
        assert_eq!(values("~LST(v, a, b , c) x"), ["a", "b", "c"]);
        assert_eq!(values("~LST({a,b},{1,2},{3,4}) x"), ["1,2", "3,4"]);
    }

    #[test]
    fn too_many() {
        assert_eq!(
            parse_generator("~SEQ(i, 1000000) x", 10, &mut |s| s.to_string()),
            Err(SeqError::TooMany)
        );
    }
}
