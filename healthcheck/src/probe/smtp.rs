//! SMTP_CHECK: banner 220, `HELO name` → 250, `QUIT` → 221.

use super::Outcome;
use crate::conn::Conn;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// SMTP_CHECK: the server must greet and accept HELO.
#[derive(Debug)]
pub struct SmtpProbe {
    /// Where it connects.
    pub conn: Conn,
    /// Default `smtpchecker.keepalived.org` (keepalived's).
    pub helo_name: String,
}

/// keepalived's default HELO name.
pub const DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

impl SmtpProbe {
    /// One SMTP exchange.
    pub async fn run(&self) -> Outcome {
        let who = self.conn.fmt("tcp");
        match self.dialogue().await {
            Ok(()) => Outcome::ok(format!("SMTP connection to {who} success.")),
            Err(e) => Outcome::fail(format!("SMTP_CHECK {who}: {e}")),
        }
    }

    async fn dialogue(&self) -> Result<(), String> {
        let t = self.conn.timeout;
        let stream = self
            .conn
            .tcp()
            .await
            .map_err(|e| format!("connection failed ({e})"))?;
        let mut s = BufReader::new(stream);
        expect(&mut s, t, 220, "banner").await?;
        send(&mut s, t, &format!("HELO {}\r\n", self.helo_name)).await?;
        expect(&mut s, t, 250, "HELO").await?;
        send(&mut s, t, "QUIT\r\n").await?;
        expect(&mut s, t, 221, "QUIT").await?;
        Ok(())
    }
}

async fn send(
    s: &mut BufReader<tokio::net::TcpStream>,
    t: std::time::Duration,
    line: &str,
) -> Result<(), String> {
    tokio::time::timeout(t, s.get_mut().write_all(line.as_bytes()))
        .await
        .map_err(|_| "write timeout".to_string())?
        .map_err(|e| format!("write error ({e})"))
}

/// Reads one (possibly multi-line `250-…`) reply and checks its code.
async fn expect(
    s: &mut BufReader<tokio::net::TcpStream>,
    t: std::time::Duration,
    code: u16,
    what: &str,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(t, s.read_line(&mut line))
            .await
            .map_err(|_| format!("read timeout waiting for {what} reply"))?
            .map_err(|e| format!("read error ({e})"))?;
        if n == 0 {
            return Err(format!("connection closed before {what} reply"));
        }
        let got: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
        match got {
            Some(c) if line.as_bytes().get(3) == Some(&b'-') && c == code => continue,
            Some(c) if c == code => return Ok(()),
            _ => return Err(format!("bad {what} reply '{}'", line.trim_end())),
        }
    }
}
