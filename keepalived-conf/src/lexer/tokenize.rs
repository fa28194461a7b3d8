//! Splitting a logical line into words (keepalived's `alloc_strvec`), with nom.
//!
//! Words are separated by blanks. A word that starts with `"` runs to the next
//! `"` and loses its quotes; an unquoted word stops at a blank or a `"`.

use nom::IResult;
use nom::bytes::complete::{take_till, take_till1, take_while};
use nom::character::complete::char;
use nom::sequence::delimited;

/// One word of a line with its byte offset in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word (quotes removed).
    pub text: String,
    /// Byte offset of its first character in the line.
    pub offset: usize,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c' | '\n' | '\r' | '\x0b')
}

fn quoted(input: &str) -> IResult<&str, &str> {
    delimited(char('"'), take_till(|c| c == '"'), char('"'))(input)
}

fn bare(input: &str) -> IResult<&str, &str> {
    take_till1(|c| is_blank(c) || c == '"')(input)
}

fn blanks(input: &str) -> IResult<&str, &str> {
    take_while(is_blank)(input)
}

/// Error: the line has a `"` with no closing `"`; words before it are kept.
#[derive(Debug, PartialEq, Eq)]
pub struct UnmatchedQuote {
    /// The words before the unmatched quote.
    pub words: Vec<Word>,
}

/// Splits a line into words.
pub fn split_words(line: &str) -> Result<Vec<Word>, UnmatchedQuote> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Ok((r, _)) = blanks(rest) {
        rest = r;
        if rest.is_empty() {
            break;
        }
        let offset = line.len() - rest.len();
        if rest.starts_with('"') {
            match quoted(rest) {
                Ok((r, w)) => {
                    words.push(Word {
                        text: w.to_string(),
                        offset,
                    });
                    rest = r;
                }
                Err(_) => return Err(UnmatchedQuote { words }),
            }
        } else {
            match bare(rest) {
                Ok((r, w)) => {
                    words.push(Word {
                        text: w.to_string(),
                        offset,
                    });
                    rest = r;
                }
                Err(_) => break,
            }
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(l: &str) -> Vec<String> {
        split_words(l)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn splits_and_unquotes() {
        assert_eq!(texts("a  b\tc"), ["a", "b", "c"]);
        assert_eq!(texts("script \"/bin/x -a b\""), ["script", "/bin/x -a b"]);
        assert_eq!(texts("a\"b c\""), ["a", "b c"]);
        assert_eq!(texts("\"\""), [""]);
        assert!(split_words("a \"b").is_err());
        assert_eq!(split_words("x  y").unwrap()[1].offset, 3);
    }
}
