//! PING_CHECK: one ICMP echo answered within connect_timeout.

use super::Outcome;
use crate::conn::Conn;
use std::net::SocketAddr;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};

/// PING_CHECK: an ICMP echo must be answered.
#[derive(Debug)]
pub struct PingProbe {
    /// Address pinged and timeout.
    pub conn: Conn,
}

impl PingProbe {
    /// One echo.
    pub async fn run(&self) -> Outcome {
        let ip = self.conn.dst.ip();
        let mut cfg = Config::builder().kind(if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 });
        if let Some(b) = self.conn.bindto {
            cfg = cfg.bind(SocketAddr::new(b, 0));
        }
        if let Some(i) = &self.conn.bind_if {
            cfg = cfg.interface(i);
        }
        let client = match Client::new(&cfg.build()) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(format!("ICMP socket error for [{ip}]: {e}")),
        };
        let mut pinger = client.pinger(ip, PingIdentifier(rand::random())).await;
        pinger.timeout(self.conn.timeout);
        match pinger.ping(PingSequence(0), &[0u8; 56]).await {
            Ok(_) => Outcome::ok(format!("ICMP connection to [{ip}] success.")),
            Err(e) => Outcome::fail(format!("ICMP CHECK to [{ip}] failed ({e}).")),
        }
    }
}
