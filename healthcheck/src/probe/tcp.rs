//! TCP_CHECK: a connection that completes within connect_timeout.

use super::Outcome;
use crate::conn::{Conn, ConnError};

/// TCP_CHECK: the connection must open.
#[derive(Debug)]
pub struct TcpProbe {
    /// Where it connects.
    pub conn: Conn,
}

impl TcpProbe {
    /// One connection attempt.
    pub async fn run(&self) -> Outcome {
        let who = self.conn.fmt("tcp");
        match self.conn.tcp().await {
            Ok(stream) => {
                drop(stream);
                Outcome::ok(format!("TCP connection to {who} success."))
            }
            Err(ConnError::Timeout) => Outcome::fail(format!("TCP connection to {who} timeout.")),
            Err(e) => Outcome::fail(format!("TCP connection to {who} failed ({e}).")),
        }
    }
}
