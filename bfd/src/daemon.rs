//! keepalived's BFD process as a thread of its own (own runtime, SCHED_RR like the VRRP
//! thread): one listening socket per family on port 3784 (TTL/hop limit read with each
//! packet for the GTSM check), one sending socket per session bound to its `source_ip` and a
//! port in 49152–65535 (RFC 5881), all sessions driven by one timer. Session states go out
//! on a watch channel (name → up) that VRRP (`track_bfd`) and the checkers (`BFD_CHECK`)
//! read without going through anyone else's runtime. Refused packets are counted by reason
//! and never change a session.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use keepalived_conf::model::KeepalivedConfig;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::codec::{CONTROL_PORT, Packet, Reject, State, diag};
use crate::config::{InstanceConfig, instances};
use crate::session::{Micros, Session};

/// Each BFD instance's state: up or not.
pub type States = BTreeMap<String, bool>;

/// What the BFD thread is asked to do.
pub enum Control {
    /// New configuration: unchanged sessions keep their state.
    Reload(Arc<KeepalivedConfig>),
    /// Stop: every session sends AdminDown.
    Shutdown,
    /// Report the sessions' states and counters.
    Status(oneshot::Sender<Status>),
}

/// What the daemon knows (for reports and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Each session's state, by instance name.
    pub sessions: Vec<(String, State)>,
    /// Packets refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Valid packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
}

/// The running BFD thread.
pub struct Handle {
    /// Where reloads, shutdown and status requests go.
    pub control: mpsc::Sender<Control>,
    /// Each instance's up/down, updated on every change.
    pub states: watch::Receiver<States>,
    /// The thread, joined after Shutdown.
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the BFD thread for `cfg`'s `bfd_instance`s.
pub fn spawn(cfg: Arc<KeepalivedConfig>) -> io::Result<Handle> {
    let (ctl_tx, ctl_rx) = mpsc::channel(8);
    let initial: States = instances(&cfg)
        .iter()
        .map(|i| (i.name.clone(), false))
        .collect();
    let (st_tx, st_rx) = watch::channel(initial);
    let thread = std::thread::Builder::new()
        .name("bfd".into())
        .spawn(move || {
            scheduling(&cfg);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("BFD: cannot start its runtime: {e}");
                    return;
                }
            };
            if let Err(e) = rt.block_on(run(cfg, ctl_rx, st_tx)) {
                log::error!("BFD: {e}");
            }
        })?;
    Ok(Handle {
        control: ctl_tx,
        states: st_rx,
        thread,
    })
}

/// `bfd_priority` (nice) and `bfd_rt_priority`; with neither, SCHED_RR 1 as the VRRP thread
/// (10 ms timers must not wait behind the checkers or table writes).
fn scheduling(cfg: &KeepalivedConfig) {
    let num = |w: &str| {
        cfg.global
            .extra_args(w)
            .and_then(|a| a.first())
            .and_then(|v| v.parse::<i32>().ok())
    };
    // SAFETY: setpriority / sched_setscheduler on the calling thread with valid arguments.
    unsafe {
        if let Some(n) = num("bfd_priority") {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, n);
            return;
        }
        let prio = num("bfd_rt_priority")
            .filter(|p| (1..=99).contains(p))
            .unwrap_or(1);
        let param = libc::sched_param {
            sched_priority: prio,
        };
        if libc::sched_setscheduler(0, libc::SCHED_RR, &param) != 0 {
            log::debug!(
                "BFD thread stays SCHED_OTHER: {}",
                io::Error::last_os_error()
            );
        }
    }
}

struct Sess {
    cfg: InstanceConfig,
    s: Session,
    sock: Option<UdpSocket>,
}

struct Engine {
    epoch: Instant,
    sessions: Vec<Sess>,
    states: watch::Sender<States>,
    status: Status,
}

impl Engine {
    fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }

    fn load(&mut self, cfg: &KeepalivedConfig) {
        let now = self.now();
        let want = instances(cfg);
        let mut old: HashMap<String, Sess> = self
            .sessions
            .drain(..)
            .map(|s| (s.cfg.name.clone(), s))
            .collect();
        for c in want {
            match old.remove(&c.name) {
                Some(mut s) if s.cfg.neighbor == c.neighbor => {
                    s.s.update(c.params);
                    if s.cfg.source != c.source || s.cfg.ttl != c.ttl {
                        s.sock = open_tx(&c);
                    }
                    s.cfg = c;
                    self.sessions.push(s);
                }
                other => {
                    if let Some(mut gone) = other {
                        send(
                            &mut self.status,
                            &gone.cfg,
                            gone.sock.as_ref(),
                            &gone.s.admin_down(),
                        );
                    }
                    let sock = open_tx(&c);
                    let discr = loop {
                        let d: u32 = rand::random();
                        if d != 0 && !self.sessions.iter().any(|s| s.s.local_discr() == d) {
                            break d;
                        }
                    };
                    self.sessions.push(Sess {
                        s: Session::new(c.params, discr, now),
                        cfg: c,
                        sock,
                    });
                }
            }
        }
        for (_, mut gone) in old {
            send(
                &mut self.status,
                &gone.cfg,
                gone.sock.as_ref(),
                &gone.s.admin_down(),
            );
        }
        let names: Vec<(String, bool)> = self
            .sessions
            .iter()
            .map(|s| (s.cfg.name.clone(), s.s.state() == State::Up))
            .collect();
        self.states.send_modify(|m| {
            m.clear();
            m.extend(names);
        });
    }

    fn reject(&mut self, r: Reject, from: SocketAddr) {
        *self.status.rejected.entry(r.name()).or_default() += 1;
        log::debug!("BFD: discarding packet from {from}: {}", r.name());
    }

    fn packet(&mut self, buf: &[u8], from: SocketAddr, ttl: u8) {
        self.status.received += 1;
        let pkt = match Packet::decode(buf, 0, 0) {
            Ok(p) => p,
            Err(r) => return self.reject(r, from),
        };
        let Some(idx) = self
            .sessions
            .iter()
            .position(|s| s.cfg.neighbor == from.ip())
        else {
            return self.reject(Reject::NoSession, from);
        };
        let min_ttl = self.sessions[idx].cfg.min_ttl;
        if ttl != 0 && ttl < min_ttl {
            return self.reject(Reject::Ttl, from);
        }
        if pkt.your_discr != 0 && pkt.your_discr != self.sessions[idx].s.local_discr() {
            return self.reject(Reject::NoSession, from);
        }
        if self.sessions[idx].s.state() == State::AdminDown {
            return self.reject(Reject::AdminDown, from);
        }
        let now = self.now();
        let out = self.sessions[idx].s.on_packet(now, &pkt);
        self.after(idx, out, now);
    }

    fn after(&mut self, idx: usize, out: crate::session::Output, now: Micros) {
        let name = self.sessions[idx].cfg.name.clone();
        if let Some((dead, overdue)) = out.expired {
            log::warn!(
                "BFD_Instance({name}) Expired after {} ms ({overdue} usec overdue)",
                dead / 1000
            );
        }
        if let Some((new, old)) = out.detect_time {
            log::info!(
                "BFD_Instance({name}) Detection time is {} ms (was {} ms)",
                new / 1000,
                old / 1000
            );
        }
        if let Some((_, to, d)) = out.changed {
            if to == State::Down {
                log::warn!(
                    "BFD_Instance({name}) Entering {} state (Local diagnostic - {}, Remote diagnostic - {})",
                    to.name(),
                    diag::name(d),
                    diag::name(self.sessions[idx].s.remote_diag())
                );
            } else {
                log::info!("BFD_Instance({name}) Entering {} state", to.name());
            }
            let up = to == State::Up;
            self.states
                .send_if_modified(|m| m.insert(name.clone(), up) != Some(up));
        }
        if out.send {
            let s = &mut self.sessions[idx];
            let p = s.s.packet();
            send(&mut self.status, &s.cfg, s.sock.as_ref(), &p);
            s.s.sent(now, rand::random());
        }
    }

    fn timers(&mut self) {
        let now = self.now();
        for idx in 0..self.sessions.len() {
            if self.sessions[idx]
                .s
                .next_deadline()
                .is_some_and(|t| t <= now)
            {
                let out = self.sessions[idx].s.on_timer(now);
                self.after(idx, out, now);
            }
        }
    }

    fn deadline(&self) -> Instant {
        self.sessions
            .iter()
            .filter_map(|s| s.s.next_deadline())
            .min()
            .map(|us| self.epoch + Duration::from_micros(us))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    fn shutdown(&mut self) {
        for s in &mut self.sessions {
            let p = s.s.admin_down();
            send(&mut self.status, &s.cfg, s.sock.as_ref(), &p);
        }
        let r = &self.status.rejected;
        if !r.is_empty() {
            let parts: Vec<String> = r.iter().map(|(k, v)| format!("{k} {v}")).collect();
            log::info!("BFD: packets discarded: {}", parts.join(", "));
        }
    }
}

fn send(status: &mut Status, c: &InstanceConfig, sock: Option<&UdpSocket>, p: &Packet) {
    let Some(sock) = sock else { return };
    match sock.try_send_to(&p.encode(), SocketAddr::new(c.neighbor, CONTROL_PORT)) {
        Ok(_) => status.sent += 1,
        Err(e) => log::debug!("BFD_Instance({}) send: {e}", c.name),
    }
}

/// A non-blocking UDP socket of the family.
fn udp(v4: bool) -> io::Result<socket2::Socket> {
    let domain = if v4 {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The sending socket of a session: bound to its source and a port in 49152–65535.
fn open_tx(c: &InstanceConfig) -> Option<UdpSocket> {
    let res = (|| -> io::Result<UdpSocket> {
        let v4 = c.neighbor.is_ipv4();
        let s = udp(v4)?;
        if v4 {
            s.set_ttl_v4(u32::from(c.ttl))?;
        } else {
            s.set_unicast_hops_v6(u32::from(c.ttl))?;
        }
        let ip = c.source.unwrap_or(if v4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        let mut last = io::Error::other("no free source port");
        for _ in 0..64 {
            let port = 49152 + rand::random::<u16>() % 16384;
            match s.bind(&SocketAddr::new(ip, port).into()) {
                Ok(()) => return UdpSocket::from_std(s.into()),
                Err(e) => last = e,
            }
        }
        Err(last)
    })();
    match res {
        Ok(s) => Some(s),
        Err(e) => {
            log::error!(
                "BFD_Instance({}) Unable to open output socket, disabling instance: {e}",
                c.name
            );
            None
        }
    }
}

/// The listening socket of one family on port 3784, reporting each packet's TTL.
fn open_rx(v4: bool) -> io::Result<UdpSocket> {
    let s = udp(v4)?;
    s.set_reuse_address(true)?;
    let on: libc::c_int = 1;
    let (level, opt) = if v4 {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    } else {
        s.set_only_v6(true)?;
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    };
    // SAFETY: setsockopt with an int option on a socket we own.
    if unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    let any = if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    s.bind(&SocketAddr::new(any, CONTROL_PORT).into())?;
    UdpSocket::from_std(s.into())
}

/// One datagram with its source and TTL / hop limit (0 when the kernel gave none).
fn recv_ttl(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u8)> {
    sock.try_io(Interest::READABLE, || {
        // SAFETY: recvmsg into buffers that live for the call; the control messages are
        // read within cbuf's bounds by the CMSG macros.
        unsafe {
            let mut addr: libc::sockaddr_storage = std::mem::zeroed();
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut cbuf = [0u64; 8];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cbuf);
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ttl = 0u8;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let (l, t) = ((*c).cmsg_level, (*c).cmsg_type);
                if (l == libc::IPPROTO_IP && t == libc::IP_TTL)
                    || (l == libc::IPPROTO_IPV6 && t == libc::IPV6_HOPLIMIT)
                {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    ttl = v.clamp(0, 255) as u8;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            let from = match i32::from(addr.ss_family) {
                libc::AF_INET => {
                    let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                    SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                        u16::from_be(a.sin_port),
                    )
                }
                _ => {
                    let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                    SocketAddr::new(
                        IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)),
                        u16::from_be(a.sin6_port),
                    )
                }
            };
            Ok((n as usize, from, ttl))
        }
    })
}

async fn readable(sock: &Option<UdpSocket>) {
    match sock {
        Some(s) => {
            let _ = s.readable().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs the sessions of `cfg` until [`Control::Shutdown`] (or the channel closes).
pub async fn run(
    cfg: Arc<KeepalivedConfig>,
    mut control: mpsc::Receiver<Control>,
    states: watch::Sender<States>,
) -> io::Result<()> {
    let rx4 = open_rx(true)
        .inspect_err(|e| log::error!("BFD: Unable to open listening socket: {e}"))
        .ok();
    let rx6 = if cfg
        .bfd_instances
        .iter()
        .any(|b| b.neighbor_ip.is_some_and(|n| n.is_ipv6()))
    {
        open_rx(false)
            .inspect_err(|e| log::error!("BFD: Unable to open IPv6 listening socket: {e}"))
            .ok()
    } else {
        None
    };
    if rx4.is_none() && rx6.is_none() {
        return Err(io::Error::other("no listening socket"));
    }
    let mut e = Engine {
        epoch: Instant::now(),
        sessions: Vec::new(),
        states,
        status: Status::default(),
    };
    e.load(&cfg);
    let mut buf = [0u8; 512];
    loop {
        let deadline = e.deadline();
        tokio::select! {
            _ = readable(&rx4) => {
                if let Some(s) = &rx4 {
                    while let Ok((n, from, ttl)) = recv_ttl(s, &mut buf) {
                        e.packet(&buf[..n], from, ttl);
                    }
                }
            }
            _ = readable(&rx6) => {
                if let Some(s) = &rx6 {
                    while let Ok((n, from, ttl)) = recv_ttl(s, &mut buf) {
                        e.packet(&buf[..n], from, ttl);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => e.timers(),
            c = control.recv() => match c {
                Some(Control::Reload(cfg)) => e.load(&cfg),
                Some(Control::Status(reply)) => {
                    let mut st = e.status.clone();
                    st.sessions = e
                        .sessions
                        .iter()
                        .map(|s| (s.cfg.name.clone(), s.s.state()))
                        .collect();
                    let _ = reply.send(st);
                }
                Some(Control::Shutdown) | None => {
                    e.shutdown();
                    return Ok(());
                }
            },
        }
    }
}
