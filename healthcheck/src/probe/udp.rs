//! UDP_CHECK: send `payload`; an ICMP error (port unreachable) is a
//! failure; silence until connect_timeout is a success unless
//! `require_reply` (then the reply must arrive, have a length within
//! min/max_reply_length and match the reply bytes, `x` nibbles masked).

use super::Outcome;
use crate::conn::Conn;

/// UDP_CHECK: a datagram must not be refused (or must be answered).
#[derive(Debug)]
pub struct UdpProbe {
    /// Where it is sent.
    pub conn: Conn,
    /// The datagram.
    pub payload: Vec<u8>,
    /// `Some` when a reply is required; the pattern (may be empty).
    pub require_reply: Option<HexPattern>,
    /// Shortest acceptable reply.
    pub min_reply_length: usize,
    /// Longest acceptable reply.
    pub max_reply_length: usize,
}

/// Bytes with per-nibble masks (`x`/`X` matches anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HexPattern {
    /// Bytes to compare.
    pub data: Vec<u8>,
    /// Per byte, the bits that match anything (`x` nibbles).
    pub mask: Vec<u8>,
}

/// keepalived's `read_hex_str`: hex digits, blanks ignored, `x` = any nibble.
pub fn parse_hex(s: &str) -> Option<HexPattern> {
    let nibbles: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if nibbles.is_empty() || !nibbles.len().is_multiple_of(2) {
        return None;
    }
    let mut p = HexPattern::default();
    for pair in nibbles.chunks(2) {
        let mut byte = 0u8;
        let mut mask = 0u8;
        for &c in pair {
            byte <<= 4;
            mask <<= 4;
            if c == 'x' || c == 'X' {
                mask |= 0xf;
            } else {
                byte |= c.to_digit(16)? as u8;
            }
        }
        p.data.push(byte);
        p.mask.push(mask);
    }
    Some(p)
}

impl HexPattern {
    fn matches(&self, got: &[u8]) -> bool {
        got.iter()
            .zip(self.data.iter().zip(&self.mask))
            .all(|(g, (d, m))| (g ^ d) & !m == 0)
    }
}

impl UdpProbe {
    /// One exchange.
    pub async fn run(&self) -> Outcome {
        let who = self.conn.fmt("udp");
        let sock = match self.conn.udp() {
            Ok(s) => s,
            Err(e) => return Outcome::fail(format!("UDP connection to {who} failed ({e}).")),
        };
        if let Err(e) = sock.send(&self.payload).await {
            return Outcome::fail(format!("UDP connection to {who} failed ({e})."));
        }
        let mut buf = vec![0u8; self.max_reply_length.max(1) + 1];
        match tokio::time::timeout(self.conn.timeout, sock.recv(&mut buf)).await {
            Err(_) if self.require_reply.is_none() => {
                Outcome::ok(format!("UDP connection to {who} success."))
            }
            Err(_) => Outcome::fail(format!("UDP connection to {who} failed (no reply).")),
            Ok(Err(e)) => Outcome::fail(format!("UDP connection to {who} failed ({e}).")),
            Ok(Ok(n)) => match &self.require_reply {
                Some(p)
                    if n < self.min_reply_length
                        || n > self.max_reply_length
                        || !p.matches(&buf[..n]) =>
                {
                    Outcome::fail(format!("UDP check to {who} reply data mismatch."))
                }
                _ => Outcome::ok(format!("UDP connection to {who} success.")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_wildcards() {
        let p = parse_hex("4f 4bxx").unwrap();
        assert_eq!(p.data, vec![0x4f, 0x4b, 0]);
        assert!(p.matches(b"OK!"));
        assert!(!p.matches(b"NO!"));
        assert!(parse_hex("abc").is_none());
        assert!(parse_hex("zz").is_none());
    }
}
