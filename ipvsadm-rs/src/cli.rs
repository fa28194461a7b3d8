//! ipvsadm's command line, parsed the way popt parses it for ipvsadm 1.31: the command must be
//! the first option, short options cluster (`-Ln`), `-p` takes an optional argument, each option
//! may appear once, and the command x option legality table decides what is allowed. Errors carry
//! ipvsadm's exact text and exit code (clap cannot reproduce these semantics, hence by hand).

use crate::Flavor;

/// The commands, with the names ipvsadm uses in its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `-A`: add a virtual service.
    Add,
    /// `-E`: change a virtual service.
    Edit,
    /// `-D`: delete a virtual service.
    Del,
    /// `-C`: delete every virtual service.
    Flush,
    /// `-L` / `-l`: list services, connections, timeouts or the sync daemons.
    List,
    /// `-Z`: zero the counters.
    Zero,
    /// `-a`: add a real server.
    AddServer,
    /// `-e`: change a real server.
    EditServer,
    /// `-d`: delete a real server.
    DelServer,
    /// `--set`: set the tcp, tcpfin and udp timeouts.
    Set,
    /// `-R`: apply commands read from stdin.
    Restore,
    /// `-S`: print the tables as `-R` input.
    Save,
    /// `--start-daemon`: start a connection-sync daemon.
    StartDaemon,
    /// `--stop-daemon`: stop a connection-sync daemon.
    StopDaemon,
    /// `-h`: print the usage.
    Help,
    /// `-v`: print the version.
    Version,
    /// alibaba/DPVS `-P`, `-Q`, `-G`.
    AddLaddr,
    /// `-Q`: delete a local address.
    DelLaddr,
    /// `-G`: list the local addresses.
    GetLaddr,
    /// DPVS `-U`, `-V`, `-B` (deny list) and `-O`, `-Y`, `-W` (allow list).
    AddBlklst,
    /// `-V` (DPVS): delete a deny-list address.
    DelBlklst,
    /// `-B`: list the deny lists.
    GetBlklst,
    /// `-O`: add an allow-list address.
    AddWhtlst,
    /// `-Y`: delete an allow-list address.
    DelWhtlst,
    /// `-W`: list the allow lists.
    GetWhtlst,
}

impl Cmd {
    /// The command's name in ipvsadm's messages.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::Zero => "zero",
            Cmd::AddServer => "add-server",
            Cmd::EditServer => "edit-server",
            Cmd::DelServer => "delete-server",
            Cmd::Set => "set",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Help => "help",
            Cmd::Version => "version",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
            Cmd::AddBlklst => "add-blklst",
            Cmd::DelBlklst => "del-blklst",
            Cmd::GetBlklst => "get-blklst",
            Cmd::AddWhtlst => "add-whtlst",
            Cmd::DelWhtlst => "del-whtlst",
            Cmd::GetWhtlst => "get-whtlst",
        }
    }
}

/// Options, with ipvsadm's optnames[] (the text its messages use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opt {
    /// `-t` / `-u` / `--sctp-service` / `-f`.
    Service,
    /// `-s`.
    Scheduler,
    /// `-p [TIMEOUT]`.
    Persistent,
    /// `-M`: the persistence netmask.
    Netmask,
    /// `-r`.
    RealServer,
    /// `-g` / `-i` / `-m` (and `-b` as `--fullnat` in the forks).
    Forward,
    /// `-w`.
    Weight,
    /// `-x`: upper connection threshold.
    UThreshold,
    /// `-y`: lower connection threshold.
    LThreshold,
    /// `-n`: addresses and ports as numbers.
    Numeric,
    /// `-c`: list connections.
    Connection,
    /// `--timeout`: list the timeouts.
    Timeout,
    /// `--daemon`: list the sync daemons.
    Daemon,
    /// `--stats`: list with counters.
    Stats,
    /// `--rate`: list with rates.
    Rate,
    /// `--thresholds`: list with thresholds.
    Thresholds,
    /// `--persistent-conn`: list with persistent connections.
    PersistentConn,
    /// `--nosort`: list in table order.
    NoSort,
    /// `--exact`: counters unabbreviated.
    Exact,
    /// `-o`: one-packet scheduling.
    Ops,
    /// `--pe`: persistence engine.
    Pe,
    /// `-b`: scheduler flags (upstream).
    SchedFlags,
    /// `--mcast-interface` of a sync daemon.
    McastInterface,
    /// `--syncid` of a sync daemon.
    SyncId,
    /// `--mcast-group` of a sync daemon.
    McastGroup,
    /// `--mcast-port` of a sync daemon.
    McastPort,
    /// `--mcast-ttl` of a sync daemon.
    McastTtl,
    /// `--sync-maxlen` of a sync daemon.
    SyncMaxlen,
    /// `--tun-info`: list with tunnel settings.
    TunInfo,
    /// `--tun-type` (ipip, gue, gre).
    TunType,
    /// `--tun-port` of GUE.
    TunPort,
    /// `--tun-nocsum`.
    TunNocsum,
    /// `--tun-csum`.
    TunCsum,
    /// `--tun-remcsum`.
    TunRemcsum,
    /// `-z`: a FULLNAT local address.
    Laddr,
    /// `-F`: the local address's interface.
    Ifname,
    /// `-j`: SYNPROXY on or off.
    Synproxy,
    /// alibaba `-V`: the ESTABLISHED timeout of a service.
    EstTimeout,
    /// DPVS `-k`: a deny-list address.
    Blklst,
    /// DPVS `-2`: an allow-list address.
    Whtlst,
}

impl Opt {
    /// The option's name in ipvsadm's messages (its optnames[] entry).
    pub fn name(self) -> &'static str {
        match self {
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::RealServer => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Timeout => "timeout",
            Opt::Daemon => "daemon",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::NoSort => "nosort",
            Opt::Exact => "exact",
            Opt::Ops => "ops",
            Opt::Pe => "pe",
            Opt::SchedFlags => "sched-flags",
            Opt::McastInterface => "mcast-interface",
            Opt::SyncId => "syncid",
            Opt::McastGroup => "mcast-group",
            Opt::McastPort => "mcast-port",
            Opt::McastTtl => "mcast-ttl",
            Opt::SyncMaxlen => "sync-maxlen",
            Opt::TunInfo => "tun-info",
            Opt::TunType => "tun-type",
            Opt::TunPort => "tun-port",
            Opt::TunNocsum => "tun-nocsum",
            Opt::TunCsum => "tun-csum",
            Opt::TunRemcsum => "tun-remcsum",
            Opt::Laddr => "local-address",
            Opt::Ifname => "ifname",
            Opt::Synproxy => "synproxy",
            Opt::EstTimeout => "vsestablish-timeout",
            Opt::Blklst => "blklst-address",
            Opt::Whtlst => "whtlst-address",
        }
    }
}

/// Which service-address option was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcArg {
    /// `-t ADDR:PORT`.
    Tcp(String),
    /// `-u ADDR:PORT`.
    Udp(String),
    /// `--sctp-service ADDR:PORT`.
    Sctp(String),
    /// `-f MARK`.
    Fwmark(String),
}

/// Forwarding method switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fwd {
    /// `-g`: direct routing.
    Gate,
    /// `-i`: tunnelling.
    Ipip,
    /// `-m`: masquerading (NAT).
    Masq,
    /// `--fullnat` (alibaba/DPVS).
    FullNat,
}

/// Everything one command line said.
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// The command (the first option).
    pub cmd: Option<Cmd>,
    /// The service address option.
    pub svc: Option<SvcArg>,
    /// `-6`: the fwmark service is IPv6.
    pub ipv6: bool,
    /// `-s` scheduler name.
    pub sched: Option<String>,
    /// `-p` given; its value when it had one.
    pub persistent: Option<Option<String>>,
    /// `-M` netmask.
    pub netmask: Option<String>,
    /// `-r` real server address.
    pub real: Option<String>,
    /// Forwarding method switch.
    pub fwd: Option<Fwd>,
    /// `-w` weight.
    pub weight: Option<String>,
    /// `-x` upper threshold.
    pub u_thresh: Option<String>,
    /// `-y` lower threshold.
    pub l_thresh: Option<String>,
    /// `--pe` engine.
    pub pe: Option<String>,
    /// `-b` scheduler flags.
    pub sched_flags: Option<String>,
    /// `--tun-type`.
    pub tun_type: Option<String>,
    /// `--tun-port`.
    pub tun_port: Option<String>,
    /// Which of `--tun-nocsum` / `--tun-csum` / `--tun-remcsum` was given.
    pub tun_csum: Option<Opt>,
    /// `-z` local address.
    pub laddr: Option<String>,
    /// `-F` interface.
    pub ifname: Option<String>,
    /// `-j` value.
    pub synproxy: Option<String>,
    /// alibaba `-V` given; its value when it had one.
    pub est_timeout: Option<Option<String>>,
    /// DPVS `-k` / `-2`: the deny- or allow-list address.
    pub acl_addr: Option<String>,
    /// `--start-daemon` / `--stop-daemon` state (master, backup).
    pub daemon_state: Option<String>,
    /// Sync-daemon options (`--mcast-interface`, `--syncid`, …) as given, checked.
    pub mcast: Vec<(Opt, String)>,
    /// Options given, for the legality table and "multiple" checks.
    pub given: Vec<Opt>,
    /// Positional arguments (`--set tcp tcpfin udp`).
    pub rest: Vec<String>,
}

impl Args {
    /// Whether option `o` was given.
    pub fn has(&self, o: Opt) -> bool {
        self.given.contains(&o)
    }
}

/// A parse failure: message for stderr and exit status.
#[derive(Debug, PartialEq, Eq)]
pub struct Fail {
    /// The text for stderr.
    pub msg: String,
    /// The exit status.
    pub code: i32,
}

/// A failure with this exit status and message.
pub fn fail(code: i32, msg: impl Into<String>) -> Fail {
    Fail {
        msg: msg.into(),
        code,
    }
}

/// What an option token means.
enum Token {
    Cmd(Cmd),
    /// An option taking a required argument.
    WithArg(ArgOpt),
    /// `-p`: optional argument.
    Persistent,
    /// `-V`: optional argument (alibaba).
    EstTimeout,
    Flag(Opt),
    Fwd(Fwd),
    Ipv6,
    Sort,
    TunCsum(Opt),
}

#[derive(Clone, Copy)]
enum ArgOpt {
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Sched,
    Netmask,
    Real,
    Weight,
    UThresh,
    LThresh,
    Pe,
    SchedFlags,
    Mcast(Opt),
    TunType,
    TunPort,
    Laddr,
    Ifname,
    Synproxy,
    Blklst,
    Whtlst,
    StartDaemon,
    StopDaemon,
}

fn long(name: &str, flavor: Flavor) -> Option<Token> {
    use ArgOpt as A;
    use Token as T;
    Some(match name {
        "add-service" => T::Cmd(Cmd::Add),
        "edit-service" => T::Cmd(Cmd::Edit),
        "delete-service" => T::Cmd(Cmd::Del),
        "clear" => T::Cmd(Cmd::Flush),
        "list" => T::Cmd(Cmd::List),
        "zero" => T::Cmd(Cmd::Zero),
        "add-server" => T::Cmd(Cmd::AddServer),
        "edit-server" => T::Cmd(Cmd::EditServer),
        "delete-server" => T::Cmd(Cmd::DelServer),
        "set" => T::Cmd(Cmd::Set),
        "restore" => T::Cmd(Cmd::Restore),
        "save" => T::Cmd(Cmd::Save),
        "start-daemon" => T::WithArg(A::StartDaemon),
        "stop-daemon" => T::WithArg(A::StopDaemon),
        "help" => T::Cmd(Cmd::Help),
        "version" => T::Cmd(Cmd::Version),
        "tcp-service" => T::WithArg(A::Tcp),
        "udp-service" => T::WithArg(A::Udp),
        "sctp-service" => T::WithArg(A::Sctp),
        "fwmark-service" => T::WithArg(A::Fwmark),
        "ipv6" => T::Ipv6,
        "scheduler" => T::WithArg(A::Sched),
        "persistent" => T::Persistent,
        "netmask" => T::WithArg(A::Netmask),
        "real-server" => T::WithArg(A::Real),
        "gatewaying" => T::Fwd(Fwd::Gate),
        "ipip" => T::Fwd(Fwd::Ipip),
        "masquerading" => T::Fwd(Fwd::Masq),
        "weight" => T::WithArg(A::Weight),
        "u-threshold" => T::WithArg(A::UThresh),
        "l-threshold" => T::WithArg(A::LThresh),
        "numeric" => T::Flag(Opt::Numeric),
        "connection" => T::Flag(Opt::Connection),
        "timeout" => T::Flag(Opt::Timeout),
        "daemon" => T::Flag(Opt::Daemon),
        "stats" => T::Flag(Opt::Stats),
        "rate" => T::Flag(Opt::Rate),
        "thresholds" => T::Flag(Opt::Thresholds),
        "persistent-conn" => T::Flag(Opt::PersistentConn),
        "nosort" => T::Flag(Opt::NoSort),
        "sort" => T::Sort,
        "exact" => T::Flag(Opt::Exact),
        "ops" => T::Flag(Opt::Ops),
        "pe" => T::WithArg(A::Pe),
        "sched-flags" => T::WithArg(A::SchedFlags),
        "mcast-interface" => T::WithArg(A::Mcast(Opt::McastInterface)),
        "syncid" => T::WithArg(A::Mcast(Opt::SyncId)),
        "mcast-group" => T::WithArg(A::Mcast(Opt::McastGroup)),
        "mcast-port" => T::WithArg(A::Mcast(Opt::McastPort)),
        "mcast-ttl" => T::WithArg(A::Mcast(Opt::McastTtl)),
        "sync-maxlen" => T::WithArg(A::Mcast(Opt::SyncMaxlen)),
        "tun-info" => T::Flag(Opt::TunInfo),
        "tun-type" => T::WithArg(A::TunType),
        "tun-port" => T::WithArg(A::TunPort),
        "tun-nocsum" => T::TunCsum(Opt::TunNocsum),
        "tun-csum" => T::TunCsum(Opt::TunCsum),
        "tun-remcsum" => T::TunCsum(Opt::TunRemcsum),
        // alibaba / DPVS extensions
        "fullnat" => T::Fwd(Fwd::FullNat),
        "add-laddr" => T::Cmd(Cmd::AddLaddr),
        "del-laddr" => T::Cmd(Cmd::DelLaddr),
        "get-laddr" => T::Cmd(Cmd::GetLaddr),
        "laddr" => T::WithArg(A::Laddr),
        "ifname" => T::WithArg(A::Ifname),
        "synproxy" => T::WithArg(A::Synproxy),
        "vsestablish-timeout" if flavor != Flavor::Dpvs => T::EstTimeout,
        "add-blklst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::AddBlklst),
        "del-blklst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::DelBlklst),
        "get-blklst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::GetBlklst),
        "add-whtlst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::AddWhtlst),
        "del-whtlst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::DelWhtlst),
        "get-whtlst" if flavor == Flavor::Dpvs => T::Cmd(Cmd::GetWhtlst),
        "blklst" if flavor == Flavor::Dpvs => T::WithArg(A::Blklst),
        "whtlst" if flavor == Flavor::Dpvs => T::WithArg(A::Whtlst),
        _ => return None,
    })
}

fn short(c: char, flavor: Flavor) -> Option<Token> {
    use ArgOpt as A;
    use Token as T;
    Some(match c {
        'A' => T::Cmd(Cmd::Add),
        'E' => T::Cmd(Cmd::Edit),
        'D' => T::Cmd(Cmd::Del),
        'C' => T::Cmd(Cmd::Flush),
        'L' | 'l' => T::Cmd(Cmd::List),
        'Z' => T::Cmd(Cmd::Zero),
        'a' => T::Cmd(Cmd::AddServer),
        'e' => T::Cmd(Cmd::EditServer),
        'd' => T::Cmd(Cmd::DelServer),
        'R' => T::Cmd(Cmd::Restore),
        'S' => T::Cmd(Cmd::Save),
        'h' => T::Cmd(Cmd::Help),
        'v' => T::Cmd(Cmd::Version),
        't' => T::WithArg(A::Tcp),
        'u' => T::WithArg(A::Udp),
        'f' => T::WithArg(A::Fwmark),
        '6' => T::Ipv6,
        's' => T::WithArg(A::Sched),
        'p' => T::Persistent,
        'M' => T::WithArg(A::Netmask),
        'r' => T::WithArg(A::Real),
        'g' => T::Fwd(Fwd::Gate),
        'i' => T::Fwd(Fwd::Ipip),
        'm' => T::Fwd(Fwd::Masq),
        'w' => T::WithArg(A::Weight),
        'x' => T::WithArg(A::UThresh),
        'y' => T::WithArg(A::LThresh),
        'n' => T::Flag(Opt::Numeric),
        'c' => T::Flag(Opt::Connection),
        'X' => T::Flag(Opt::Exact),
        'o' => T::Flag(Opt::Ops),
        // -b: --sched-flags upstream, --fullnat in the alibaba/DPVS flavours.
        'b' if flavor == Flavor::Upstream => T::WithArg(A::SchedFlags),
        'b' => T::Fwd(Fwd::FullNat),
        'P' => T::Cmd(Cmd::AddLaddr),
        'Q' => T::Cmd(Cmd::DelLaddr),
        'G' => T::Cmd(Cmd::GetLaddr),
        'z' => T::WithArg(A::Laddr),
        'F' => T::WithArg(A::Ifname),
        'j' => T::WithArg(A::Synproxy),
        // -V: alibaba's --vsestablish-timeout; DPVS's --del-blklst.
        'V' if flavor == Flavor::Dpvs => T::Cmd(Cmd::DelBlklst),
        'V' => T::EstTimeout,
        'U' if flavor == Flavor::Dpvs => T::Cmd(Cmd::AddBlklst),
        'B' if flavor == Flavor::Dpvs => T::Cmd(Cmd::GetBlklst),
        'O' if flavor == Flavor::Dpvs => T::Cmd(Cmd::AddWhtlst),
        'Y' if flavor == Flavor::Dpvs => T::Cmd(Cmd::DelWhtlst),
        'W' if flavor == Flavor::Dpvs => T::Cmd(Cmd::GetWhtlst),
        'k' if flavor == Flavor::Dpvs => T::WithArg(A::Blklst),
        '2' if flavor == Flavor::Dpvs => T::WithArg(A::Whtlst),
        _ => return None,
    })
}

/// Parses ipvsadm's arguments (without argv[0]).
pub fn parse(argv: &[String], flavor: Flavor) -> Result<Args, Fail> {
    let mut a = Args::default();
    let mut i = 0;
    let mut first = true;
    let try_help = || {
        fail(
            255,
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        )
    };
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            a.rest.extend(argv[i..].iter().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            a.rest.push(arg.clone());
            continue;
        }
        // One token may hold several short options (-Ln), or a long one (--x[=value]).
        let mut pending: Vec<(Token, String, Option<String>)> = Vec::new();
        if let Some(name) = arg.strip_prefix("--") {
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let Some(tok) = long(name, flavor) else {
                return Err(fail(255, format!("{arg}: unknown option")));
            };
            pending.push((tok, arg.clone(), inline));
        } else {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let Some(tok) = short(chars[k], flavor) else {
                    return Err(fail(255, format!("-{}: unknown option", chars[k])));
                };
                let takes = matches!(
                    tok,
                    Token::WithArg(_) | Token::Persistent | Token::EstTimeout
                );
                let rest: String = chars[k + 1..].iter().collect();
                if takes && !rest.is_empty() {
                    pending.push((tok, format!("-{}", chars[k]), Some(rest)));
                    break;
                }
                pending.push((tok, format!("-{}", chars[k]), None));
                k += 1;
            }
        }
        for (tok, shown, inline) in pending {
            if first
                && !matches!(
                    tok,
                    Token::Cmd(_) | Token::WithArg(ArgOpt::StartDaemon | ArgOpt::StopDaemon)
                )
            {
                return Err(try_help());
            }
            first = false;
            // Required argument: inline, or the next token.
            let mut required = |inline: Option<String>| -> Result<String, Fail> {
                if let Some(v) = inline {
                    return Ok(v);
                }
                match argv.get(i) {
                    Some(v) => {
                        i += 1;
                        Ok(v.clone())
                    }
                    None => Err(fail(255, format!("{shown}: missing argument"))),
                }
            };
            match tok {
                Token::Cmd(c) => set_cmd(&mut a, c)?,
                Token::Persistent => {
                    let value = match inline {
                        Some(v) => Some(v),
                        // popt's optional argument: the next token unless it looks like an option.
                        None => match argv.get(i) {
                            Some(v) if !v.starts_with('-') => {
                                i += 1;
                                Some(v.clone())
                            }
                            _ => None,
                        },
                    };
                    set_opt(&mut a, Opt::Persistent)?;
                    a.persistent = Some(value);
                }
                Token::EstTimeout => {
                    let value = match inline {
                        Some(v) => Some(v),
                        None => match argv.get(i) {
                            Some(v) if !v.starts_with('-') => {
                                i += 1;
                                Some(v.clone())
                            }
                            _ => None,
                        },
                    };
                    set_opt(&mut a, Opt::EstTimeout)?;
                    a.est_timeout = Some(value);
                }
                Token::Flag(o) => set_opt(&mut a, o)?,
                Token::Fwd(f) => {
                    set_opt(&mut a, Opt::Forward)?;
                    a.fwd = Some(f);
                }
                Token::Ipv6 => a.ipv6 = true,
                Token::Sort => {}
                Token::TunCsum(o) => {
                    set_opt(&mut a, o)?;
                    a.tun_csum = Some(o);
                }
                Token::WithArg(w) => {
                    let v = required(inline)?;
                    match w {
                        ArgOpt::Tcp => svc(&mut a, SvcArg::Tcp(v))?,
                        ArgOpt::Udp => svc(&mut a, SvcArg::Udp(v))?,
                        ArgOpt::Sctp => svc(&mut a, SvcArg::Sctp(v))?,
                        ArgOpt::Fwmark => svc(&mut a, SvcArg::Fwmark(v))?,
                        ArgOpt::Sched => {
                            value(&mut a, Opt::Scheduler, v, |a, v| a.sched = Some(v))?
                        }
                        ArgOpt::Netmask => {
                            value(&mut a, Opt::Netmask, v, |a, v| a.netmask = Some(v))?
                        }
                        ArgOpt::Real => value(&mut a, Opt::RealServer, v, |a, v| a.real = Some(v))?,
                        ArgOpt::Weight => value(&mut a, Opt::Weight, v, |a, v| a.weight = Some(v))?,
                        ArgOpt::UThresh => {
                            value(&mut a, Opt::UThreshold, v, |a, v| a.u_thresh = Some(v))?
                        }
                        ArgOpt::LThresh => {
                            value(&mut a, Opt::LThreshold, v, |a, v| a.l_thresh = Some(v))?
                        }
                        ArgOpt::Pe => value(&mut a, Opt::Pe, v, |a, v| a.pe = Some(v))?,
                        ArgOpt::SchedFlags => {
                            value(&mut a, Opt::SchedFlags, v, |a, v| a.sched_flags = Some(v))?
                        }
                        ArgOpt::Mcast(o) => {
                            set_opt(&mut a, o)?;
                            check_mcast(o, &v)?;
                            a.mcast.push((o, v));
                        }
                        ArgOpt::TunType => {
                            value(&mut a, Opt::TunType, v, |a, v| a.tun_type = Some(v))?
                        }
                        ArgOpt::TunPort => {
                            value(&mut a, Opt::TunPort, v, |a, v| a.tun_port = Some(v))?
                        }
                        ArgOpt::Laddr => value(&mut a, Opt::Laddr, v, |a, v| a.laddr = Some(v))?,
                        ArgOpt::Ifname => value(&mut a, Opt::Ifname, v, |a, v| a.ifname = Some(v))?,
                        ArgOpt::Synproxy => {
                            value(&mut a, Opt::Synproxy, v, |a, v| a.synproxy = Some(v))?
                        }
                        ArgOpt::Blklst => {
                            value(&mut a, Opt::Blklst, v, |a, v| a.acl_addr = Some(v))?
                        }
                        ArgOpt::Whtlst => {
                            value(&mut a, Opt::Whtlst, v, |a, v| a.acl_addr = Some(v))?
                        }
                        ArgOpt::StartDaemon => {
                            set_cmd(&mut a, Cmd::StartDaemon)?;
                            a.daemon_state = Some(v);
                        }
                        ArgOpt::StopDaemon => {
                            set_cmd(&mut a, Cmd::StopDaemon)?;
                            a.daemon_state = Some(v);
                        }
                    }
                }
            }
        }
    }
    Ok(a)
}

/// ipvsadm's checks of the sync-daemon values, made as each option is parsed. A unicast
/// `--mcast-group` is accepted (xlvs extension: the master sends to it, the backup listens on
/// it); ipvsadm 1.31 refuses it with "invalid IPv4 mcast-group".
fn check_mcast(o: Opt, v: &str) -> Result<(), Fail> {
    let range = |min: i64, max: i64, what: &str| match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(fail(2, format!("illegal {what} specified"))),
    };
    match o {
        Opt::SyncId => range(0, 255, "syncid"),
        Opt::McastPort => range(1, 65535, "mcast-port"),
        Opt::McastTtl => range(1, 255, "mcast-ttl"),
        Opt::SyncMaxlen => range(1, 65535 - 28, "sync-maxlen"),
        Opt::McastGroup if v.contains(':') => v
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| fail(2, format!("invalid IPv6 mcast-group `{v}'"))),
        Opt::McastGroup => v
            .parse::<std::net::Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| fail(2, format!("invalid IPv4 mcast-group `{v}'"))),
        _ => Ok(()),
    }
}

fn set_cmd(a: &mut Args, c: Cmd) -> Result<(), Fail> {
    if a.cmd.is_some() {
        return Err(fail(2, "multiple commands specified"));
    }
    a.cmd = Some(c);
    Ok(())
}

fn set_opt(a: &mut Args, o: Opt) -> Result<(), Fail> {
    if a.given.contains(&o) {
        return Err(fail(
            2,
            format!("multiple '{}' options specified", o.name()),
        ));
    }
    a.given.push(o);
    Ok(())
}

fn svc(a: &mut Args, s: SvcArg) -> Result<(), Fail> {
    set_opt(a, Opt::Service)?;
    a.svc = Some(s);
    Ok(())
}

fn value(
    a: &mut Args,
    o: Opt,
    v: String,
    store: impl FnOnce(&mut Args, String),
) -> Result<(), Fail> {
    set_opt(a, o)?;
    store(a, v);
    Ok(())
}

/// ipvsadm's commands_v_options: '+' required, 'x' optional, '1' at most one of the '1's.
fn legality(cmd: Cmd, o: Opt) -> Option<char> {
    use Opt::*;
    let req_opt = |req: &[Opt], optional: &[Opt]| {
        if req.contains(&o) {
            Some('+')
        } else if optional.contains(&o) {
            Some('x')
        } else {
            None
        }
    };
    match cmd {
        Cmd::Add | Cmd::Edit => req_opt(
            &[Service],
            &[
                Scheduler, Persistent, Netmask, Ops, Pe, SchedFlags, Synproxy, EstTimeout,
            ],
        ),
        Cmd::Del => req_opt(&[Service], &[]),
        Cmd::Flush | Cmd::Restore | Cmd::Help | Cmd::Version => None,
        Cmd::List => match o {
            Connection | Service | Timeout | Daemon => Some('1'),
            Numeric | Stats | Rate | Thresholds | PersistentConn | NoSort | SyncId | Exact
            | TunInfo => Some('x'),
            _ => None,
        },
        Cmd::AddServer | Cmd::EditServer => req_opt(
            &[Service, RealServer],
            &[
                Forward, Weight, UThreshold, LThreshold, TunType, TunPort, TunNocsum, TunCsum,
                TunRemcsum,
            ],
        ),
        Cmd::DelServer => req_opt(&[Service, RealServer], &[]),
        Cmd::Set => None,
        Cmd::StartDaemon => req_opt(
            &[],
            &[
                McastInterface,
                SyncId,
                McastGroup,
                McastPort,
                McastTtl,
                SyncMaxlen,
            ],
        ),
        Cmd::StopDaemon => req_opt(&[], &[SyncId]),
        Cmd::Save => req_opt(&[], &[Numeric]),
        Cmd::Zero => req_opt(&[], &[Service]),
        Cmd::AddLaddr | Cmd::DelLaddr => req_opt(&[Service, Laddr], &[Ifname]),
        Cmd::GetLaddr => req_opt(&[], &[Service, Numeric]),
        Cmd::AddBlklst | Cmd::DelBlklst => req_opt(&[Service, Blklst], &[]),
        Cmd::AddWhtlst | Cmd::DelWhtlst => req_opt(&[Service, Whtlst], &[]),
        Cmd::GetBlklst | Cmd::GetWhtlst => req_opt(&[], &[Service]),
    }
}

/// Position of an option in ipvsadm's option table (optnames[]), which sets the order in which
/// its checks report.
fn table_index(o: Opt) -> usize {
    use Opt::*;
    const ORDER: [Opt; 40] = [
        Numeric,
        Connection,
        Service,
        Scheduler,
        Persistent,
        Netmask,
        RealServer,
        Forward,
        Weight,
        UThreshold,
        LThreshold,
        McastInterface,
        SyncId,
        Timeout,
        Daemon,
        Stats,
        Rate,
        Thresholds,
        PersistentConn,
        NoSort,
        Exact,
        Ops,
        Pe,
        SchedFlags,
        McastGroup,
        McastPort,
        McastTtl,
        SyncMaxlen,
        TunInfo,
        TunType,
        TunPort,
        TunNocsum,
        TunCsum,
        TunRemcsum,
        Laddr,
        Ifname,
        Synproxy,
        EstTimeout,
        Blklst,
        Whtlst,
    ];
    ORDER.iter().position(|x| *x == o).unwrap_or(ORDER.len())
}

/// ipvsadm's generic_opt_check plus the list-command conflicts.
pub fn check(a: &Args) -> Result<Cmd, Fail> {
    let Some(cmd) = a.cmd else {
        return Err(fail(
            255,
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        ));
    };
    // Required ones first, in table order.
    let all = [
        Opt::Service,
        Opt::RealServer,
        Opt::Laddr,
        Opt::Blklst,
        Opt::Whtlst,
    ];
    for o in all {
        if legality(cmd, o) == Some('+') && !a.has(o) {
            return Err(fail(
                2,
                format!(
                    "You need to supply the '{}' option for the '{}' command",
                    o.name(),
                    cmd.name()
                ),
            ));
        }
    }
    let mut one: Option<Opt> = None;
    // ipvsadm walks its option table in its own order, not the command line's.
    let mut given = a.given.clone();
    given.sort_by_key(|o| table_index(*o));
    for o in &given {
        match legality(cmd, *o) {
            None => {
                return Err(fail(
                    2,
                    format!(
                        "Illegal '{}' option with the '{}' command",
                        o.name(),
                        cmd.name()
                    ),
                ));
            }
            Some('1') => {
                if let Some(prev) = one {
                    return Err(fail(
                        2,
                        format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            o.name(),
                            prev.name(),
                            cmd.name()
                        ),
                    ));
                }
                one = Some(*o);
            }
            _ => {}
        }
    }
    if cmd == Cmd::List {
        let entries = a.has(Opt::Connection) || a.has(Opt::Timeout) || a.has(Opt::Daemon);
        let figures = a.has(Opt::Stats) || a.has(Opt::Rate) || a.has(Opt::Thresholds);
        if (entries && figures)
            || ((a.has(Opt::Timeout) || a.has(Opt::Daemon)) && a.has(Opt::PersistentConn))
        {
            return Err(fail(2, "options conflicts in the list command"));
        }
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, Fail> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v, Flavor::Upstream)
    }

    fn err(s: &str) -> (i32, String) {
        match p(s).and_then(|a| check(&a).map(|_| ())) {
            Err(f) => (f.code, f.msg),
            Ok(()) => (0, String::new()),
        }
    }

    #[test]
    fn clustered_short_options_and_optional_persistent_argument() {
        let a = p("-Ln").unwrap();
        assert_eq!(a.cmd, Some(Cmd::List));
        assert!(a.has(Opt::Numeric));
        let a = p("-A -t 198.18.0.1:80 -p -s rr").unwrap();
        assert_eq!(a.persistent, Some(None));
        assert_eq!(a.sched.as_deref(), Some("rr"));
        let a = p("-A -t 198.18.0.1:80 -p 600").unwrap();
        assert_eq!(a.persistent, Some(Some("600".into())));
        let a = p("-A --tcp-service=198.18.0.1:80 -s360").unwrap();
        assert_eq!(a.sched.as_deref(), Some("360"));
    }

    #[test]
    fn errors_are_ipvsadms() {
        assert_eq!(err("-nL").0, 255);
        assert_eq!(err("-L -L"), (2, "multiple commands specified".into()));
        assert_eq!(
            err("-A -t 1.2.3.4:80 -s rr -s wrr"),
            (2, "multiple 'scheduler' options specified".into())
        );
        assert_eq!(
            err("-A -s rr"),
            (
                2,
                "You need to supply the 'service-address' option for the 'add-service' command"
                    .into()
            )
        );
        assert_eq!(
            err("-D -t 1.2.3.4:80 -s rr"),
            (
                2,
                "Illegal 'scheduler' option with the 'delete-service' command".into()
            )
        );
        assert_eq!(
            err("-L --timeout -t 1.2.3.4:80"),
            (
                2,
                // As the real ipvsadm says it (recorded on a kernel with IPVS).
                "The option 'timeout' conflicts with the 'service-address' option in the 'list' command"
                    .into()
            )
        );
        assert_eq!(
            err("-L -c --stats"),
            (2, "options conflicts in the list command".into())
        );
        assert_eq!(err("-L --bogus"), (255, "--bogus: unknown option".into()));
        assert_eq!(err("-A -t"), (255, "-t: missing argument".into()));
    }

    #[test]
    fn b_is_sched_flags_upstream_and_fullnat_in_the_forks() {
        let v: Vec<String> = "-a -t 1.2.3.4:80 -r 5.6.7.8 -b"
            .split(' ')
            .map(String::from)
            .collect();
        let a = parse(&v, Flavor::Alibaba).unwrap();
        assert_eq!(a.fwd, Some(Fwd::FullNat));
        let a = p("-A -t 1.2.3.4:80 -s sh -b sh-port").unwrap();
        assert_eq!(a.sched_flags.as_deref(), Some("sh-port"));
    }

    fn in_flavor(line: &str, f: Flavor) -> Result<Args, Fail> {
        let v: Vec<String> = line.split(' ').map(String::from).collect();
        parse(&v, f).and_then(|a| check(&a).map(|_| a))
    }

    #[test]
    fn v_is_est_timeout_for_alibaba_and_del_blklst_for_dpvs() {
        let a = in_flavor("-E -t 1.2.3.4:80 -V 60", Flavor::Alibaba).unwrap();
        assert_eq!(a.est_timeout, Some(Some("60".into())));
        let a = in_flavor("-V -t 1.2.3.4:80 -k 198.18.0.9", Flavor::Dpvs).unwrap();
        assert_eq!(a.cmd, Some(Cmd::DelBlklst));
        assert_eq!(a.acl_addr.as_deref(), Some("198.18.0.9"));
        let a = in_flavor(
            "--add-whtlst -t 1.2.3.4:80 --whtlst 198.18.0.9",
            Flavor::Dpvs,
        )
        .unwrap();
        assert_eq!(a.cmd, Some(Cmd::AddWhtlst));
        assert_eq!(
            in_flavor("-B", Flavor::Dpvs).unwrap().cmd,
            Some(Cmd::GetBlklst)
        );
        // Only the DPVS flavour has the lists.
        assert_eq!(
            in_flavor("-U -t 1.2.3.4:80 -k 198.18.0.9", Flavor::Alibaba).unwrap_err(),
            fail(255, "-U: unknown option")
        );
        assert_eq!(
            in_flavor("-U -t 1.2.3.4:80", Flavor::Dpvs).unwrap_err(),
            fail(
                2,
                "You need to supply the 'blklst-address' option for the 'add-blklst' command"
            )
        );
        assert_eq!(
            in_flavor("-O -t 1.2.3.4:80 -k 198.18.0.9", Flavor::Dpvs)
                .unwrap_err()
                .code,
            2
        );
    }
}
