//! DNS_CHECK: a query (recursion desired) answered with the same id, the
//! response bit and rcode NOERROR within connect_timeout.

use super::Outcome;
use crate::conn::Conn;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::str::FromStr;

/// DNS_CHECK: a query must get an answer.
#[derive(Debug)]
pub struct DnsProbe {
    /// Where the query goes.
    pub conn: Conn,
    /// Name asked.
    pub name: Name,
    /// Record type asked.
    pub rtype: RecordType,
}

impl DnsProbe {
    /// `name` and `type` as written in the config (checked by the parser).
    pub fn new(conn: Conn, name: &str, rtype: &str) -> Result<DnsProbe, String> {
        let name = if name == "." {
            Name::root()
        } else {
            Name::from_ascii(name).map_err(|e| format!("invalid DNS_CHECK name '{name}': {e}"))?
        };
        let rtype = RecordType::from_str(rtype)
            .map_err(|e| format!("invalid DNS_CHECK type '{rtype}': {e}"))?;
        Ok(DnsProbe { conn, name, rtype })
    }

    /// One query.
    pub async fn run(&self) -> Outcome {
        match tokio::time::timeout(self.conn.timeout, self.query()).await {
            Ok(Ok(())) => Outcome::ok(format!("DNS_CHECK ({}) success.", self.conn.fmt("udp"))),
            Ok(Err(e)) => Outcome::fail(format!("DNS_CHECK ({}) {e}", self.conn.fmt("udp"))),
            Err(_) => Outcome::fail(format!(
                "DNS_CHECK ({}) read timeout from socket",
                self.conn.fmt("udp")
            )),
        }
    }

    async fn query(&self) -> Result<(), String> {
        let sock = self
            .conn
            .udp()
            .map_err(|e| format!("connection error ({e})."))?;
        let id: u16 = rand::random();
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(self.name.clone(), self.rtype));
        let bytes = m
            .to_vec()
            .map_err(|e| format!("cannot encode query: {e}"))?;
        sock.send(&bytes)
            .await
            .map_err(|e| format!("failed to write socket ({e})."))?;
        let mut buf = [0u8; 4096];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| format!("failed to read socket ({e})."))?;
            // Like keepalived: ignore what is not the answer to our query.
            let Ok(r) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if r.id() != id || r.message_type() != MessageType::Response {
                continue;
            }
            if r.response_code() != ResponseCode::NoError {
                return Err(format!(
                    "read error occurred. (rcode = {})",
                    u16::from(r.response_code())
                ));
            }
            return Ok(());
        }
    }
}
