//! Carrying out a parsed ipvsadm command against the data plane: validation of values (with
//! ipvsadm's messages), building the IPVS objects, listing, saving and restoring.

use std::io::{Read, Write};
use std::net::IpAddr;

use dataplane::model::*;
use dataplane::{Dataplane, Error, Options};

use crate::Flavor;
use crate::cli::{self, Args, Cmd, Fail, Fwd, Opt, SvcArg, fail};
use crate::format::{self, ListMode};
use crate::names::{parse_addr_port, parse_port};

const MAX_TIMEOUT: u32 = 86400 * 31;

/// Runs one ipvsadm command line; returns the exit status.
pub fn run(argv: &[String], flavor: Flavor) -> i32 {
    let mut dp = None;
    match run_with(argv, flavor, &mut dp, false) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{}", f.msg);
            f.code
        }
    }
}

/// Standard input as text. ipvsadm reads bytes: a byte that is not UTF-8 (in a comment, a
/// name) must not cost the whole file, so it is replaced and only a line that needs it fails.
pub fn read_stdin() -> Option<String> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `-R` on the given text (ipvsadm-restore uses it after filtering comments).
pub fn restore_from(text: &str, flavor: Flavor) -> i32 {
    let mut dp = None;
    match restore(text, flavor, &mut dp) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{}", f.msg);
            f.code
        }
    }
}

fn open(dp: &mut Option<Dataplane>) -> Result<&mut Dataplane, Fail> {
    if dp.is_none() {
        let d = Dataplane::open(&Options::from_env()).map_err(|e| {
            fail(
                2,
                format!(
                    "Can't initialize ipvs: {e}\nAre you sure that IP Virtual Server is built in the kernel or as module?"
                ),
            )
        })?;
        *dp = Some(d);
    }
    Ok(dp.as_mut().expect("just opened"))
}

/// A data-plane failure: ipvsadm prints ipvs_strerror and exits 255.
fn op(r: dataplane::Result<()>) -> Result<i32, Fail> {
    match r {
        Ok(()) => Ok(0),
        Err(e) => Err(fail(255, e.to_string())),
    }
}

/// One command line on `dp` (opened on first use); `in_restore` refuses a nested `-R`. Errors
/// carry ipvsadm's message and exit status.
pub fn run_with(
    argv: &[String],
    flavor: Flavor,
    dp: &mut Option<Dataplane>,
    in_restore: bool,
) -> Result<i32, Fail> {
    if argv.is_empty() {
        // No arguments at all: list everything, names resolved.
        let d = open(dp)?;
        return list_all(d, &ListMode::default(), flavor);
    }
    let a = cli::parse(argv, flavor)?;
    let cmd = cli::check(&a)?;
    match cmd {
        Cmd::Help => {
            print!("{}", usage(flavor));
            Ok(0)
        }
        Cmd::Version => {
            println!("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)");
            Ok(0)
        }
        Cmd::Restore => {
            if in_restore {
                return Err(fail(255, "ipvsadm: -R is not allowed inside a restore"));
            }
            let text = read_stdin().ok_or_else(|| fail(255, "cannot read standard input"))?;
            restore(&text, flavor, dp)
        }
        Cmd::Set => {
            if a.rest.len() != 3 {
                return Err(fail(2, "--set option requires 3 timeout values"));
            }
            let mut v = [0u32; 3];
            for (i, s) in a.rest.iter().enumerate() {
                v[i] = match s.parse::<u32>() {
                    Ok(n) if n <= MAX_TIMEOUT => n,
                    _ => return Err(fail(2, format!("invalid timeout value `{s}' specified"))),
                };
            }
            let t = Timeouts {
                tcp: v[0],
                tcp_fin: v[1],
                udp: v[2],
            };
            op(open(dp)?.set_timeouts(&t))
        }
        Cmd::StartDaemon | Cmd::StopDaemon => {
            let state = a.daemon_state.as_deref().unwrap_or("");
            let Some(role) = syncd::config::Role::from_name(state) else {
                return Err(fail(
                    2,
                    if cmd == Cmd::StartDaemon {
                        "illegal start-daemon parameter specified"
                    } else {
                        "illegal start_daemon specified"
                    },
                ));
            };
            if let Some(extra) = a.rest.first() {
                return Err(fail(2, format!("unexpected argument {extra}")));
            }
            daemon(cmd, role, &a)
        }
        _ => {
            if let Some(extra) = a.rest.first() {
                return Err(fail(2, format!("unexpected argument {extra}")));
            }
            execute(cmd, &a, flavor, dp)
        }
    }
}

fn execute(cmd: Cmd, a: &Args, flavor: Flavor, dp: &mut Option<Dataplane>) -> Result<i32, Fail> {
    let svc = a
        .svc
        .as_ref()
        .map(|s| service_addr(s, a.ipv6))
        .transpose()?;
    match cmd {
        Cmd::Add | Cmd::Edit => {
            let svc = svc.expect("required by the legality table");
            let cfg = service_config(svc, a, flavor)?;
            let d = open(dp)?;
            if cmd == Cmd::Add {
                op(d.add_service(&cfg))
            } else {
                op(d.edit_service(&cfg))
            }
        }
        Cmd::Del => op(open(dp)?.del_service(&svc.expect("required"))),
        Cmd::Flush => op(open(dp)?.flush()),
        Cmd::Zero => op(open(dp)?.zero(svc.as_ref())),
        Cmd::AddServer | Cmd::EditServer | Cmd::DelServer => {
            let svc = svc.expect("required");
            let dest = dest_config(&svc, a, cmd)?;
            let d = open(dp)?;
            match cmd {
                Cmd::AddServer => op(d.add_dest(&svc, &dest)),
                Cmd::EditServer => op(d.edit_dest(&svc, &dest)),
                _ => op(d.del_dest(&svc, dest.addr, dest.port)),
            }
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let svc = svc.expect("required");
            let raw = a.laddr.as_deref().unwrap_or("");
            let addr: IpAddr = raw.parse().map_err(|_| fail(2, "illegal local address"))?;
            let d = open(dp)?;
            if cmd == Cmd::AddLaddr {
                let l = LocalAddr {
                    addr,
                    ifname: a.ifname.clone(),
                    conns: 0,
                    port_conflicts: 0,
                };
                op(d.add_laddr(&svc, &l))
            } else {
                op(d.del_laddr(&svc, addr))
            }
        }
        Cmd::AddBlklst | Cmd::DelBlklst | Cmd::AddWhtlst | Cmd::DelWhtlst => {
            let svc = svc.expect("required");
            let kind = acl_kind(cmd);
            let raw = a.acl_addr.as_deref().unwrap_or("");
            let addr = acl_address(raw, kind)?;
            let d = open(dp)?;
            if matches!(cmd, Cmd::AddBlklst | Cmd::AddWhtlst) {
                op(d.add_acl(&svc, kind, addr))
            } else {
                op(d.del_acl(&svc, kind, addr))
            }
        }
        Cmd::GetBlklst | Cmd::GetWhtlst => {
            let kind = acl_kind(cmd);
            let d = open(dp)?;
            let entries = match &svc {
                // DPVS filters the lists by the service given, existing or not.
                Some(s) => d.service(s).map(|e| vec![e]).unwrap_or_default(),
                None => d.services().map_err(|e| fail(1, e.to_string()))?,
            };
            let mut out = format::acl_title(kind);
            for e in &entries {
                out.push_str(&format::acl_lines(e, kind));
            }
            emit(&out)
        }
        Cmd::GetLaddr => {
            let d = open(dp)?;
            let entries = match &svc {
                Some(s) => vec![d.service(s).map_err(|e| fail(1, e.to_string()))?],
                None => d.services().map_err(|e| fail(1, e.to_string()))?,
            };
            let mut out = String::new();
            for (i, e) in entries.iter().enumerate() {
                out.push_str(&format::laddr_block(e, i == 0));
            }
            emit(&out)
        }
        Cmd::Save => emit(&save_text(open(dp)?, a.has(Opt::Numeric), flavor)?),
        Cmd::List if a.has(Opt::Daemon) => {
            // The daemons' own records (syncd::state); the tables are not needed.
            let out: String = syncd::control::list(&Options::from_env().pin_dir)
                .iter()
                .map(|r| r.settings.line())
                .collect();
            emit(&out)
        }
        Cmd::List => {
            let d = open(dp)?;
            let m = ListMode {
                numeric: a.has(Opt::Numeric),
                stats: a.has(Opt::Stats),
                rate: a.has(Opt::Rate),
                thresholds: a.has(Opt::Thresholds),
                persistent_conn: a.has(Opt::PersistentConn),
                tun_info: a.has(Opt::TunInfo),
                exact: a.has(Opt::Exact),
                nosort: a.has(Opt::NoSort),
            };
            if a.has(Opt::Connection) {
                let conns = d.connections().map_err(|e| fail(1, e.to_string()))?;
                let mut out = String::from("IPVS connection entries\n");
                out.push_str(&format!(
                    "pro expire {:<11} {:<18} {:<18} {}\n",
                    "state", "source", "virtual", "destination"
                ));
                for c in &conns {
                    out.push_str(&format::conn_line(c, m.numeric));
                }
                return emit(&out);
            }
            if a.has(Opt::Timeout) {
                let t = d.timeouts().map_err(|e| fail(1, e.to_string()))?;
                return emit(&format!(
                    "Timeout (tcp tcpfin udp): {} {} {}\n",
                    t.tcp, t.tcp_fin, t.udp
                ));
            }
            if let Some(s) = svc {
                let e = d.service(&s).map_err(|e| fail(1, e.to_string()))?;
                let out = format!(
                    "{}{}",
                    format::title(&m),
                    format::service_entry(&e, &m, flavor)
                );
                return emit(&out);
            }
            list_all(d, &m, flavor)
        }
        _ => Ok(0),
    }
}

/// What `-S` prints: the services sorted as ipvsadm sorts them, then (fork flavours) their local
/// addresses and (DPVS) their deny/allow lists.
pub fn save_text(d: &mut Dataplane, numeric: bool, flavor: Flavor) -> Result<String, Fail> {
    let mut all = d.services().map_err(|e| fail(1, e.to_string()))?;
    format::sort_services(&mut all);
    let mut out: String = all
        .iter()
        .map(|e| format::save_service(e, numeric, false, flavor))
        .collect();
    if flavor != Flavor::Upstream {
        out.extend(all.iter().map(|e| format::save_laddrs(e, numeric)));
    }
    if flavor == Flavor::Dpvs {
        out.extend(all.iter().map(|e| format::save_acls(e, numeric)));
    }
    Ok(out)
}

/// `--start-daemon` / `--stop-daemon`: the sync daemon of this data plane (crate `syncd`),
/// started as a detached copy of this binary in its hidden daemon mode.
fn daemon(cmd: Cmd, role: syncd::config::Role, a: &Args) -> Result<i32, Fail> {
    let pin_dir = Options::from_env().pin_dir;
    if cmd == Cmd::StopDaemon {
        return syncd::control::stop(&pin_dir, role)
            .map(|_| 0)
            .map_err(|e| fail(255, syncd::control::message(&e, false)));
    }
    let mut req = syncd::config::Request::new(role);
    for (o, v) in &a.mcast {
        // Checked by the parser already.
        match o {
            Opt::McastInterface => req.ifname = v.clone(),
            Opt::SyncId => req.syncid = v.parse().unwrap_or(0),
            Opt::SyncMaxlen => req.maxlen = v.parse().unwrap_or(0),
            Opt::McastGroup => req.group = v.parse().ok(),
            Opt::McastPort => req.port = v.parse().unwrap_or(0),
            Opt::McastTtl => req.ttl = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let exe = std::env::current_exe()
        .map_err(|e| fail(255, format!("cannot find the ipvsadm executable: {e}")))?;
    syncd::control::start(&pin_dir, &req, &exe)
        .map(|_| 0)
        .map_err(|e| fail(255, syncd::control::message(&e, true)))
}

fn list_all(d: &mut Dataplane, m: &ListMode, flavor: Flavor) -> Result<i32, Fail> {
    let mut all = d.services().map_err(|e| fail(1, e.to_string()))?;
    if !m.nosort {
        format::sort_services(&mut all);
    }
    let mut out = format::version_header(d.conn_table_size());
    out.push_str(&format::title(m));
    for e in &all {
        out.push_str(&format::service_entry(e, m, flavor));
    }
    emit(&out)
}

fn emit(s: &str) -> Result<i32, Fail> {
    let mut o = std::io::stdout().lock();
    // A closed pipe (ipvsadm -L | head) is not an error worth a message.
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
    Ok(0)
}

/// ipvsadm -R: each line is a command line; validation failures stop with 2, operation failures
/// are printed and the restore goes on; the status is the last line's.
pub fn restore(text: &str, flavor: Flavor, dp: &mut Option<Dataplane>) -> Result<i32, Fail> {
    // One lock and one view of the tables for the whole restore.
    open(dp)?
        .hold_lock()
        .map_err(|e| fail(255, e.to_string()))?;
    let mut status = 0;
    for words in restore_lines(text) {
        status = match run_with(&words, flavor, dp, true) {
            Ok(code) => code,
            Err(f) if restore_goes_on(&f) => {
                // An operation failed: say so and carry on, as ipvsadm -R does.
                eprintln!("{}", f.msg);
                f.code
            }
            Err(f) => return Err(f),
        };
    }
    if let Some(d) = dp.as_mut() {
        d.release_lock().map_err(|e| fail(255, e.to_string()))?;
    }
    Ok(status)
}

/// The command lines of a `-R` file: words split at blanks, the word `ipvsadm` left out (saves
/// of some tools carry it), blank lines skipped.
pub fn restore_lines(text: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    text.lines()
        .map(|line| {
            line.split([' ', '\t', '\r'])
                .filter(|w| !w.is_empty() && *w != "ipvsadm")
                .map(String::from)
                .collect::<Vec<String>>()
        })
        .filter(|words| !words.is_empty())
}

/// Whether `-R` goes on after a line failed this way: an operation that failed (exit 255), not
/// an option error, which stops it.
pub fn restore_goes_on(f: &Fail) -> bool {
    f.code == 255
        && !f.msg.starts_with("Try ")
        && !f.msg.contains(": unknown option")
        && !f.msg.contains(": missing argument")
}

fn service_addr(s: &SvcArg, ipv6: bool) -> Result<ServiceAddr, Fail> {
    let bad = || fail(2, "illegal virtual server address[:port] specified");
    let inet = |proto: Protocol, v: &str| -> Result<ServiceAddr, Fail> {
        let (addr, port) = parse_addr_port(v, proto).ok_or_else(bad)?;
        Ok(ServiceAddr::Inet {
            proto,
            addr,
            port: port.unwrap_or(0),
        })
    };
    match s {
        SvcArg::Tcp(v) => inet(Protocol::Tcp, v),
        SvcArg::Udp(v) => inet(Protocol::Udp, v),
        SvcArg::Sctp(v) => inet(Protocol::Sctp, v),
        SvcArg::Fwmark(v) => {
            let mark = match v.parse::<u64>() {
                Ok(m) if (1..=u32::MAX as u64).contains(&m) => m as u32,
                _ => return Err(fail(2, format!("invalid fwmark value `{v}' specified"))),
            };
            Ok(ServiceAddr::Fwmark {
                mark,
                family: if ipv6 { Family::V6 } else { Family::V4 },
            })
        }
    }
}

fn service_config(svc: ServiceAddr, a: &Args, flavor: Flavor) -> Result<ServiceConfig, Fail> {
    let mut c = ServiceConfig::new(svc);
    let sched_name = a.sched.clone().unwrap_or_else(|| "wlc".into());
    if let Some(p) = &a.persistent {
        c.persistent = Some(match p {
            None => 360,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_TIMEOUT).contains(&n) => n,
                _ => return Err(fail(2, format!("invalid timeout value `{v}' specified"))),
            },
        });
    }
    if let Some(m) = &a.netmask {
        c.netmask = match svc.family() {
            Family::V4 => mask_prefix(m)
                .ok_or_else(|| fail(2, "illegal virtual server persistent mask specified"))?,
            Family::V6 => match m.parse::<u8>() {
                Ok(n) if (1..=128).contains(&n) => n,
                _ => return Err(fail(2, "illegal ipv6 netmask specified")),
            },
        };
    }
    c.pe = a.pe.clone();
    c.one_packet = a.has(Opt::Ops);
    if c.one_packet
        && !matches!(
            svc,
            ServiceAddr::Inet {
                proto: Protocol::Udp,
                ..
            } | ServiceAddr::Fwmark { .. }
        )
    {
        return Err(fail(
            2,
            "One-Packet Scheduling is only for UDP virtual services",
        ));
    }
    if let Some(f) = &a.sched_flags {
        c.sched_flags = sched_flags(f, &sched_name)?;
    }
    if let Some(v) = &a.synproxy {
        c.synproxy = if "enable".starts_with(v.as_str()) && !v.is_empty() {
            true
        } else if "disable".starts_with(v.as_str()) && !v.is_empty() {
            false
        } else {
            return Err(fail(2, "synproxy switch must be enable or disable"));
        };
    }
    if let Some(t) = &a.est_timeout {
        match t.as_deref().map(str::parse::<u32>) {
            Some(Ok(n)) if n > 0 => c.est_timeout = Some(n),
            _ => return Err(fail(2, "vsestablish-timeout should not be zero")),
        }
    }
    let _ = flavor;
    if let ServiceAddr::Inet { port: 0, .. } = svc
        && c.persistent.is_none()
    {
        return Err(fail(2, "Zero port specified for non-persistent service"));
    }
    c.scheduler = Scheduler::from_name(&sched_name)
        .ok_or_else(|| fail(255, Error::SchedulerNotFound.to_string()))?;
    Ok(c)
}

fn acl_kind(cmd: Cmd) -> AclKind {
    match cmd {
        Cmd::AddBlklst | Cmd::DelBlklst | Cmd::GetBlklst => AclKind::Deny,
        _ => AclKind::Allow,
    }
}

/// A `-k`/`-2` argument: a client address (DPVS also takes `ipset:NAME`, which needs ipsets
/// the XDP path does not have).
fn acl_address(raw: &str, kind: AclKind) -> Result<IpAddr, Fail> {
    let list = match kind {
        AclKind::Deny => "blacklist",
        AclKind::Allow => "whitelist",
    };
    if let Some(set) = raw.strip_prefix("ipset:") {
        return Err(fail(
            2,
            format!("{list} entry ipset:{set}: ipsets are not supported by xlvs, list addresses"),
        ));
    }
    raw.parse::<IpAddr>().map_err(|_| {
        fail(
            2,
            format!("illegal {list} entry format, require [ IP | ipset:NAME ]"),
        )
    })
}

/// An IPv4 netmask as dotted quad (or a name like parse_netmask's inet_aton): its prefix length.
fn mask_prefix(m: &str) -> Option<u8> {
    let (addr, _) = parse_addr_port(m, Protocol::Tcp)?;
    let IpAddr::V4(v4) = addr else { return None };
    let bits = u32::from(v4);
    // Only contiguous masks can be expressed here.
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones() as u8)
}

fn sched_flags(list: &str, sched: &str) -> Result<u32, Fail> {
    let mut flags = 0;
    for f in list.split(',') {
        let (bit, need) = dataplane::model::sched_flag(f)
            .ok_or_else(|| fail(2, format!("invalid scheduler flag `{f}'")))?;
        if let Some(s) = need
            && s.name() != sched
        {
            return Err(fail(2, format!("incompatible scheduler flag `{f}'")));
        }
        flags |= bit;
    }
    Ok(flags)
}

/// The real server a `-a`/`-e`/`-d` names. Only adding and editing force a DR/tunnel real's port
/// to the service's and check its family (ipvsadm 1.31 and the kernel do so for those two only):
/// `-d` takes no forwarding option, and its real is exactly the address and port given.
fn dest_config(svc: &ServiceAddr, a: &Args, cmd: Cmd) -> Result<DestConfig, Fail> {
    let adds = matches!(cmd, Cmd::AddServer | Cmd::EditServer);
    let proto = match svc {
        ServiceAddr::Inet { proto, .. } => *proto,
        ServiceAddr::Fwmark { .. } => Protocol::Tcp,
    };
    let raw = a.real.as_deref().unwrap_or("");
    let (addr, port) = parse_addr_port(raw, proto)
        .ok_or_else(|| fail(2, "illegal real server address[:port] specified"))?;
    let vport = match svc {
        ServiceAddr::Inet { port, .. } => *port,
        ServiceAddr::Fwmark { .. } => 0,
    };
    let mut d = DestConfig::new(addr, port.unwrap_or(vport));
    d.forward = match a.fwd {
        Some(Fwd::Masq) => Forward::Masq,
        Some(Fwd::Ipip) => Forward::Tunnel,
        Some(Fwd::FullNat) => Forward::FullNat,
        Some(Fwd::Gate) | None => Forward::Route,
    };
    // DR and tunnels cannot change the port (ipvsadm forces it, except for fwmark services).
    if adds
        && matches!(d.forward, Forward::Route | Forward::Tunnel)
        && matches!(svc, ServiceAddr::Inet { .. })
    {
        d.port = vport;
    }
    let int = |v: &Option<String>, msg: &str| -> Result<Option<u32>, Fail> {
        match v {
            None => Ok(None),
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n <= i32::MAX as u32 => Ok(Some(n)),
                _ => Err(fail(2, msg)),
            },
        }
    };
    if let Some(w) = int(&a.weight, "illegal weight specified")? {
        d.weight = w as i32;
    }
    if let Some(x) = int(&a.u_thresh, "illegal u_threshold specified")? {
        d.u_threshold = x;
    }
    if let Some(y) = int(&a.l_thresh, "illegal l_threshold specified")? {
        d.l_threshold = y;
    }
    tunnel(&mut d, a)?;
    // fwmark services too: their family is -6 or IPv4 (ipvsadm 1.31 and the kernel refuse
    // `-A -f 7; -a -f 7 -r [2001:db8::21]:0 -g`).
    if adds && svc.family() != Family::of(&d.addr) && d.forward != Forward::Tunnel {
        return Err(fail(
            2,
            "Different address family is allowed only for tunneling servers",
        ));
    }
    Ok(d)
}

fn tunnel(d: &mut DestConfig, a: &Args) -> Result<(), Fail> {
    let any = a.tun_type.is_some() || a.tun_port.is_some() || a.tun_csum.is_some();
    if !any {
        return Ok(());
    }
    if d.forward != Forward::Tunnel {
        return Err(fail(2, "Tunnel options conflict with forward method"));
    }
    let kind = match a.tun_type.as_deref().unwrap_or("ipip") {
        "ipip" => TunnelType::Ipip,
        "gue" => TunnelType::Gue,
        "gre" => TunnelType::Gre,
        _ => return Err(fail(2, "illegal tunnel type specified")),
    };
    let tname = a.tun_type.as_deref().unwrap_or("ipip");
    let illegal = |o: Opt| {
        fail(
            2,
            format!(
                "Illegal '{}' option with the '{tname}' tunnel type",
                o.name()
            ),
        )
    };
    match kind {
        TunnelType::Ipip => {
            if a.tun_port.is_some() {
                return Err(illegal(Opt::TunPort));
            }
            if let Some(o) = a.tun_csum {
                return Err(illegal(o));
            }
        }
        TunnelType::Gre => {
            if a.tun_port.is_some() {
                return Err(illegal(Opt::TunPort));
            }
            if a.tun_csum == Some(Opt::TunRemcsum) {
                return Err(illegal(Opt::TunRemcsum));
            }
        }
        TunnelType::Gue => {
            let Some(p) = &a.tun_port else {
                return Err(fail(
                    2,
                    "You need to supply the 'tun-port' option for the 'gue' tunnel type",
                ));
            };
            d.tunnel.port = match parse_port(p, Protocol::Udp) {
                Some(n) if n > 0 => n,
                _ => return Err(fail(2, "illegal tunnel port specified")),
            };
        }
    }
    d.tunnel.kind = kind;
    d.tunnel.flags = match a.tun_csum {
        Some(Opt::TunCsum) => tun_flags::CSUM,
        Some(Opt::TunRemcsum) => tun_flags::REMCSUM,
        _ => tun_flags::NOCSUM,
    };
    Ok(())
}

/// ipvsadm 1.31's help text (recorded from the real binary), plus the fork extensions in that
/// flavour.
fn usage(flavor: Flavor) -> String {
    let mut text = include_str!("usage.txt").to_string();
    if flavor != Flavor::Upstream {
        text.push_str(
            "Extensions (alibaba/DPVS; -b is --fullnat in this flavour):
  --fullnat      -b                   FULLNAT forwarding
  --add-laddr    -P                   add a local address (-z) to a service
  --del-laddr    -Q                   delete a local address
  --get-laddr    -G                   list local addresses
  --laddr        -z address           local address
  --ifname       -F name              interface of the local address
  --synproxy     -j enable|disable    SYN proxy for the service
  --vsestablish-timeout -V seconds    ESTABLISHED timeout of the service
",
        );
    }
    text
}
