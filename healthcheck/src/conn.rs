//! Checker sockets: destination and the `bindto`/`bind_port`/`bind_if`/
//! `fwmark` options every connecting checker shares (keepalived's
//! `conn_opts_t`).

use keepalived_conf::model::CheckerCommon;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Resolved connection options of one checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// Address checked (connect_ip/connect_port, else the real's).
    pub dst: SocketAddr,
    /// Source address (`bindto`).
    pub bindto: Option<IpAddr>,
    /// Source port (`bind_port`).
    pub bind_port: Option<u16>,
    /// Interface of a link-local source (`bind_if`).
    pub bind_if: Option<String>,
    /// Mark put on the probe's packets.
    pub fwmark: Option<u32>,
    /// How long connecting may take.
    pub timeout: Duration,
}

impl Conn {
    /// `connect_ip`/`connect_port` override the real's address and port.
    pub fn resolve(real: SocketAddr, c: &CheckerCommon, default_port: Option<u16>) -> Conn {
        let port = c
            .connect_port
            .or(if real.port() == 0 { default_port } else { None })
            .unwrap_or(real.port());
        Conn {
            dst: SocketAddr::new(c.connect_ip.unwrap_or(real.ip()), port),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: secs(c.connect_timeout),
        }
    }

    /// keepalived's FMT_CHK style `[ip]:proto:port`.
    pub fn fmt(&self, proto: &str) -> String {
        format!("[{}]:{}:{}", self.dst.ip(), proto, self.dst.port())
    }

    /// A socket with the bind options applied (non-blocking).
    pub fn socket(&self, ty: Type, proto: Option<Protocol>) -> io::Result<Socket> {
        let domain = if self.dst.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        // Non-blocking from creation: one syscall less per probe.
        let s = Socket::new(domain, ty.cloexec().nonblocking(), proto)?;
        if let Some(ifname) = &self.bind_if {
            s.bind_device(Some(ifname.as_bytes()))?;
        }
        if let Some(mark) = self.fwmark {
            s.set_mark(mark)?;
        }
        if self.bindto.is_some() || self.bind_port.is_some() {
            let ip = self.bindto.unwrap_or(if self.dst.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            });
            if self.bind_port.is_some() {
                s.set_reuse_address(true)?;
            }
            s.bind(&SockAddr::from(SocketAddr::new(
                ip,
                self.bind_port.unwrap_or(0),
            )))?;
        }
        Ok(s)
    }

    /// TCP connect within `connect_timeout`.
    pub async fn tcp(&self) -> Result<TcpStream, ConnError> {
        let s = self
            .socket(Type::STREAM, Some(Protocol::TCP))
            .map_err(ConnError::Socket)?;
        let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(s));
        match tokio::time::timeout(self.timeout, sock.connect(self.dst)).await {
            Ok(Ok(st)) => Ok(st),
            Ok(Err(e)) => Err(ConnError::Failed(e)),
            Err(_) => Err(ConnError::Timeout),
        }
    }

    /// A connected UDP socket.
    pub fn udp(&self) -> Result<UdpSocket, ConnError> {
        let s = self
            .socket(Type::DGRAM, Some(Protocol::UDP))
            .map_err(ConnError::Socket)?;
        s.connect(&SockAddr::from(self.dst))
            .map_err(ConnError::Failed)?;
        UdpSocket::from_std(std::net::UdpSocket::from(s)).map_err(ConnError::Socket)
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnError {
    /// The socket could not be created or bound (a local problem).
    Socket(io::Error),
    /// Connecting failed (refused, unreachable, …).
    Failed(io::Error),
    /// Connecting took longer than the timeout.
    Timeout,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Socket(e) => write!(f, "socket error: {e}"),
            ConnError::Failed(e) => write!(f, "{e}"),
            ConnError::Timeout => write!(f, "timeout"),
        }
    }
}

/// Seconds from the config as a Duration (never negative or NaN).
pub fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}
