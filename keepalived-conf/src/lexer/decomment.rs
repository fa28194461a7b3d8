//! Comment removal, as keepalived's `decomment()` does it.
//!
//! `#` and `!` start a comment anywhere outside `"…"`; `\#` and `\!` outside
//! quotes stand for the literal characters; a trailing `\` (used only by
//! multi-line definitions) is kept; leading and trailing blanks go.

/// Result of decommenting one raw line.
#[derive(Debug, PartialEq, Eq)]
pub struct Decommented {
    /// The line without comments and surrounding blanks.
    pub text: String,
    /// Bytes of leading blanks removed (for column numbers).
    pub lead: usize,
    /// A `"` was opened and never closed.
    pub unterminated_quote: bool,
}

/// Removes comments and surrounding blanks from one raw line.
pub fn decomment(raw: &str) -> Decommented {
    let trimmed = raw.trim_start_matches([' ', '\t']);
    let lead = raw.len() - trimmed.len();
    let mut out = String::with_capacity(trimmed.len());
    let mut in_quote = false;
    let mut continuation = false;
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quote = !in_quote;
                out.push(c);
            }
            '\\' => match chars.peek().copied() {
                None => {
                    continuation = true;
                    break;
                }
                Some(n) if !in_quote && (n == '#' || n == '!') => {
                    out.push(n);
                    chars.next();
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                    chars.next();
                }
            },
            '#' | '!' if !in_quote => break,
            _ => out.push(c),
        }
    }
    let unterminated_quote = in_quote;
    let keep = out.trim_end_matches([' ', '\t']).len();
    out.truncate(keep);
    if continuation {
        out.push('\\');
    }
    Decommented {
        text: out,
        lead,
        unterminated_quote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_outside_quotes() {
        assert_eq!(decomment("  a b # c").text, "a b");
        assert_eq!(decomment("a ! c").text, "a");
        assert_eq!(decomment("a \"x # y\" # z").text, "a \"x # y\"");
        assert_eq!(decomment("a \\# b").text, "a # b");
        assert_eq!(decomment("a \\! b").text, "a ! b");
        assert_eq!(decomment("\t a").lead, 2);
    }

    #[test]
    fn keeps_trailing_backslash() {
        // Blanks before the trailing `\` go too, as in keepalived.
        assert_eq!(decomment("$X=a \\").text, "$X=a\\");
        assert!(decomment("a \"b").unterminated_quote);
    }
}
