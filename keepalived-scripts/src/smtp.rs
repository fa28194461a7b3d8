//! keepalived's SMTP alerts (`smtp.c`): one connection per alert to `smtp_server`, the
//! commands and message keepalived writes byte for byte (HELO, MAIL FROM, one RCPT TO per
//! `notification_email`, DATA, the Date/From/Subject/X-Mailer/To headers, the body line,
//! `\r\n.\r\n`, QUIT), each reply awaited for at most `smtp_connect_timeout`. Subjects start
//! with `[router_id]`; router_id, the HELO name and the sender default to what keepalived
//! takes (the host name, `user@host`).
//!
//! Sending never blocks the caller: [`Mailer::send`] spawns the conversation on the current
//! tokio runtime. Failures are logged, as keepalived logs them, and dropped.

use std::sync::Arc;
use std::time::Duration;

use keepalived_conf::model::KeepalivedConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where and how alerts go; `None` from [`Mailer::from_config`] when keepalived would send
/// nothing (no `notification_email` or no `smtp_server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailer {
    /// SMTP server host.
    pub server: String,
    /// SMTP server port.
    pub port: u16,
    /// Name sent in HELO.
    pub helo: String,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Names this node in subjects.
    pub router_id: String,
    /// Longest a mail's SMTP exchange may take.
    pub timeout: Duration,
}

/// What an alert is about: the subject keepalived builds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About<'a> {
    /// `[rid] VRRP Instance NAME - WHAT`
    Instance(&'a str),
    /// `[rid] VRRP Group NAME - WHAT`
    Group(&'a str),
    /// `[rid] Realserver RS of virtual server VS - WHAT` (RS/VS as keepalived formats them).
    Real {
        /// The real server.
        rs: &'a str,
        /// Its virtual server.
        vs: &'a str,
    },
    /// `[rid] Virtualserver VS - WHAT`
    Virtual(&'a str),
}

/// The host name (uname's nodename), keepalived's default router_id and HELO name.
pub fn local_name() -> String {
    // SAFETY: uname fills the struct we own; nodename is NUL terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "localhost".into();
        }
        std::ffi::CStr::from_ptr(u.nodename.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The user keepalived runs as (the default sender is `user@host`).
fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "keepalived".into())
}

impl Mailer {
    /// The mailer keepalived's global settings describe, or None when no mail would be sent.
    pub fn from_config(cfg: &KeepalivedConfig) -> Option<Arc<Mailer>> {
        let g = &cfg.global;
        let server = g.smtp_server.as_ref()?;
        if g.notification_email.is_empty() {
            return None;
        }
        let host = local_name();
        Some(Arc::new(Mailer {
            server: server.host.clone(),
            port: server.port,
            helo: g.smtp_helo_name.clone().unwrap_or_else(|| host.clone()),
            from: g
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("{}@{host}", user_name())),
            to: g.notification_email.clone(),
            router_id: g.router_id.clone().unwrap_or(host),
            timeout: Duration::from_secs_f64(g.smtp_connect_timeout.max(0.001)),
        }))
    }

    /// The subject line keepalived writes.
    pub fn subject(&self, about: &About, what: &str) -> String {
        let rid = &self.router_id;
        match about {
            About::Instance(n) => format!("[{rid}] VRRP Instance {n} - {what}"),
            About::Group(n) => format!("[{rid}] VRRP Group {n} - {what}"),
            About::Real { rs, vs } => {
                format!("[{rid}] Realserver {rs} of virtual server {vs} - {what}")
            }
            About::Virtual(vs) => format!("[{rid}] Virtualserver {vs} - {what}"),
        }
    }

    /// The message after DATA: headers, the body line, and the terminating dot.
    pub fn message(&self, date: &str, subject: &str, body: &str) -> String {
        format!(
            "Date: {date}\r\nFrom: {}\r\nSubject: {subject}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{body}\r\n\r\n.\r\n",
            self.from,
            self.to.join(", ")
        )
    }

    /// Sends one alert in the background; the task's handle (for waiting at stop).
    pub fn send(
        self: &Arc<Self>,
        about: &About,
        what: &str,
        body: &str,
    ) -> tokio::task::JoinHandle<()> {
        let subject = self.subject(about, what);
        let body = body.to_string();
        let m = self.clone();
        tokio::spawn(async move {
            let hostport = format!("[{}]:{}", m.server, m.port);
            if let Err(e) = m.converse(&subject, &body).await {
                log::info!("SMTP alert to {hostport} failed: {e}");
            } else {
                log::debug!("SMTP alert successfully sent.");
            }
        })
    }

    async fn converse(&self, subject: &str, body: &str) -> Result<(), String> {
        let t = self.timeout;
        let host = format!("[{}]:{}", self.server, self.port);
        let conn = tokio::time::timeout(t, TcpStream::connect((self.server.as_str(), self.port)))
            .await
            .map_err(|_| format!("Timeout connecting SMTP server {host}."))?
            .map_err(|e| format!("SMTP connection ERROR to {host}: {e}"))?;
        log::debug!("Remote SMTP server {host} connected.");
        let (r, mut w) = conn.into_split();
        let mut r = BufReader::new(r);
        let expect = |code: u16, got: u16, what: &str| {
            if code == got {
                Ok(())
            } else {
                Err(format!(
                    "Error processing {what} on SMTP server {host}. SMTP status code = {got}"
                ))
            }
        };
        expect(220, reply(&mut r, t).await?, "connect")?;
        let mut send = async |line: String| -> Result<(), String> {
            w.write_all(line.as_bytes())
                .await
                .map_err(|e| format!("Can not send data to remote SMTP server: {e}"))
        };
        send(format!("HELO {}\r\n", self.helo)).await?;
        expect(250, reply(&mut r, t).await?, "HELO cmd")?;
        send(format!("MAIL FROM:<{}>\r\n", self.from)).await?;
        expect(250, reply(&mut r, t).await?, "MAIL cmd")?;
        for to in &self.to {
            send(format!("RCPT TO:<{to}>\r\n")).await?;
            expect(250, reply(&mut r, t).await?, "RCPT cmd")?;
        }
        send("DATA\r\n".into()).await?;
        expect(354, reply(&mut r, t).await?, "DATA cmd")?;
        send(self.message(&rfc822_now(), subject, body)).await?;
        expect(250, reply(&mut r, t).await?, "DOT cmd")?;
        send("QUIT\r\n".into()).await?;
        let _ = reply(&mut r, t).await;
        Ok(())
    }
}

/// The code of the last line of one reply (`250-` continuation lines skipped).
async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, t: Duration) -> Result<u16, String> {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(t, r.read_line(&mut line))
            .await
            .map_err(|_| "Timeout reading data to remote SMTP server.".to_string())?
            .map_err(|e| format!("Error reading data from remote SMTP server: {e}"))?;
        if n == 0 {
            return Err("Remote SMTP server has closed the connection.".into());
        }
        let b = line.as_bytes();
        if b.len() < 3 {
            continue;
        }
        if b.get(3) == Some(&b'-') {
            continue;
        }
        return line[..3]
            .parse()
            .map_err(|_| format!("bad SMTP reply {line:?}"));
    }
}

/// `strftime("%a, %d %b %Y %H:%M:%S %z")` of now, local time, C locale (keepalived's Date).
pub fn rfc822_now() -> String {
    // SAFETY: time/localtime_r/strftime with buffers we own; the format is NUL terminated.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        let mut buf = [0u8; 80];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a, %d %b %Y %H:%M:%S %z".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// The body keepalived's checkers send when a checker changes state.
pub mod bodies {
    /// TCP_CHECK passed.
    pub const TCP_UP: &str = "=> TCP CHECK succeed on service <=";
    /// TCP_CHECK failed.
    pub const TCP_DOWN: &str = "=> TCP CHECK failed on service <=";
    /// HTTP_GET / SSL_GET passed.
    pub const HTTP_UP: &str = "=> CHECK succeed on service <=";
    /// HTTP_GET / SSL_GET failed.
    pub const HTTP_DOWN: &str = "=> CHECK failed on service : HTTP request failed <=";
    /// MISC_CHECK passed.
    pub const MISC_UP: &str = "=> MISC CHECK succeeded on service <=";
    /// MISC_CHECK failed.
    pub const MISC_DOWN: &str = "=> MISC CHECK failed on service <=";
    /// DNS_CHECK passed.
    pub const DNS_UP: &str = "=> DNS_CHECK: succeed on service <=";
    /// DNS_CHECK failed.
    pub const DNS_DOWN: &str = "=> DNS_CHECK: failed on service <=";
    /// UDP_CHECK passed.
    pub const UDP_UP: &str = "=> UDP CHECK succeed on service <=";
    /// UDP_CHECK failed.
    pub const UDP_DOWN: &str = "=> UDP CHECK failed on service <=";
    /// PING_CHECK passed.
    pub const PING_UP: &str = "=> ICMP CHECK succeed on service <=";
    /// PING_CHECK failed.
    pub const PING_DOWN: &str = "=> ICMP CHECK failed on service <=";
    /// SMTP_CHECK passed.
    pub const SMTP_UP: &str = "=> CHECK succeed on service <=";
    /// A real server removed from its service.
    pub const REMOVING: &str = "=> Removing <=";
    /// The checkers stop.
    pub const SHUTTING_DOWN: &str = "=> Shutting down <=";

    /// SMTP_CHECK's failure: `=> CHECK failed on service : REASON <=`.
    pub fn smtp_down(reason: &str) -> String {
        format!("=> CHECK failed on service : {reason} <=")
    }

    /// BFD_CHECK: `=> BFD CHECK NAME succeeded|failed on service <=`.
    pub fn bfd(name: &str, up: bool) -> String {
        format!(
            "=> BFD CHECK {name} {} on service <=",
            if up { "succeeded" } else { "failed" }
        )
    }

    /// VRRP instance transitions: (subject word, body).
    pub fn instance(state: &str) -> Option<(&'static str, &'static str)> {
        Some(match state {
            "MASTER" => (
                "Entering MASTER state",
                "=> VRRP Instance is now owning VRRP VIPs <=",
            ),
            "BACKUP" => (
                "Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            "FAULT" => (
                "Entering FAULT state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            "STOP" => ("Stopping", "=> VRRP Instance stopping <="),
            "DELETED" => ("Deleted", "=> VRRP Deleted at reload <="),
            _ => return None,
        })
    }

    /// Sync group transitions: (subject word, body).
    pub fn group(state: &str) -> Option<(&'static str, &'static str)> {
        Some(match state {
            "MASTER" => (
                "Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
            "BACKUP" => (
                "Entering BACKUP state",
                "=> All VRRP group instances are now in BACKUP state <=",
            ),
            "FAULT" => (
                "Entering FAULT state",
                "=> All VRRP group instances are now in FAULT state <=",
            ),
            "STOP" => (
                "Stopping",
                "=> All VRRP group instances are now stopping <=",
            ),
            _ => return None,
        })
    }

    /// A quorum change: `=> WHAT Q+H=T <= SUM <=` (keepalived writes `+` for a loss too).
    pub fn quorum(
        up: bool,
        init: bool,
        quorum: u32,
        hysteresis: u32,
        threshold: i64,
        sum: i64,
    ) -> String {
        let what = match (up, init) {
            (true, true) => "Starting with quorum up",
            (true, false) => "Gained quorum",
            (false, true) => "Starting with quorum down",
            (false, false) => "Lost quorum",
        };
        format!("=> {what} {quorum}+{hysteresis}={threshold} <= {sum} <=")
    }
}

/// Whether alerts are on for a VRRP instance or sync group (its own `smtp_alert`, else the
/// global `smtp_alert_vrrp`, else `smtp_alert`).
pub fn vrrp_alert(cfg: &KeepalivedConfig, own: Option<bool>) -> bool {
    own.or(cfg.global.smtp_alert_vrrp)
        .or(cfg.global.smtp_alert)
        .unwrap_or(false)
}

/// Whether alerts are on for a real server (its own, its virtual server's, the global
/// `smtp_alert_checker`, `smtp_alert`).
pub fn checker_alert(cfg: &KeepalivedConfig, vs: Option<bool>, rs: Option<bool>) -> bool {
    rs.or(vs)
        .or(cfg.global.smtp_alert_checker)
        .or(cfg.global.smtp_alert)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer {
            server: "198.18.0.25".into(),
            port: 25,
            helo: "h".into(),
            from: "ka@example.com".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
            router_id: "R1".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn subjects_and_message_as_keepalived_writes_them() {
        let m = mailer();
        assert_eq!(
            m.subject(&About::Instance("VI_1"), "Entering MASTER state"),
            "[R1] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(
            m.subject(
                &About::Real {
                    rs: "[127.0.0.3]:tcp:80",
                    vs: "[127.0.0.100]:tcp:80"
                },
                "DOWN"
            ),
            "[R1] Realserver [127.0.0.3]:tcp:80 of virtual server [127.0.0.100]:tcp:80 - DOWN"
        );
        assert_eq!(
            m.message("D", "S", "=> x <="),
            "Date: D\r\nFrom: ka@example.com\r\nSubject: S\r\nX-Mailer: Keepalived\r\n\
             To: a@example.com, b@example.com\r\n\r\n=> x <=\r\n\r\n.\r\n"
        );
        assert_eq!(
            bodies::quorum(true, true, 2, 0, 2, 6),
            "=> Starting with quorum up 2+0=2 <= 6 <="
        );
    }

    #[test]
    fn defaults_from_the_host_name() {
        let c = keepalived_conf::parse_str(
            "global_defs {\n notification_email {\n a@b\n }\n smtp_server 198.18.0.25\n}\n",
            "t",
            &Default::default(),
        )
        .config;
        let m = Mailer::from_config(&c).unwrap();
        let host = local_name();
        assert_eq!(m.router_id, host);
        assert_eq!(m.helo, host);
        assert_eq!(m.from, format!("{}@{host}", user_name()));
        assert_eq!(m.port, 25);
        assert_eq!(m.timeout, Duration::from_secs(30));
        let none = keepalived_conf::parse_str(
            "global_defs {\n smtp_server 1.2.3.4\n}\n",
            "t",
            &Default::default(),
        )
        .config;
        assert!(Mailer::from_config(&none).is_none());
    }
}
