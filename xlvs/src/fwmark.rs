//! `xlvs fwmark`: the classifier that gives packets the marks fwmark services
//! (`ipvsadm -A -f N`, keepalived `virtual_server fwmark N`) match, since XDP runs before
//! iptables could mark them.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dataplane::fwmark::FwmarkRule;
use dataplane::fwmark_import;
use dataplane::model::Protocol;
use dataplane::{Dataplane, FwmarkError, Options};

#[derive(Subcommand)]
pub enum FwmarkCommand {
    /// Add a rule: packets of PROTO to DST with a destination port in DPORT get MARK.
    /// Rules giving different marks may not overlap.
    Add(RuleArgs),
    /// Remove a rule (the same arguments as when it was added, or a line of `list`).
    Del(RuleArgs),
    /// List the rules, one per line, sorted, in `add`'s syntax.
    List,
    /// Remove every rule.
    Flush,
    /// Add the mangle table's `-j MARK` rules of `iptables-save` / `ip6tables-save` output, or
    /// the `meta mark set` rules of `nft list ruleset` output (FILE, or standard input); a rule
    /// that cannot be represented stops the import, with its line number, and nothing is added.
    Import {
        /// iptables-save or `nft list ruleset` output; `-` or nothing: standard input.
        file: Option<PathBuf>,
        /// Replace every existing rule instead of adding to them.
        #[arg(long)]
        replace: bool,
        /// Print the rules that would be added, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
pub struct RuleArgs {
    /// The mark (1-4294967295; decimal or 0x hex): the fwmark service `-f MARK` takes the packets.
    #[arg(long, value_parser = parse_mark)]
    mark: u32,
    /// Protocol: tcp, udp, or all (both; no --dport then).
    #[arg(short = 'p', long = "proto", default_value = "all", value_parser = parse_proto)]
    proto: Proto,
    /// Destination address or prefix: 198.18.0.10, 198.18.0.0/24, 2001:db8::/64
    /// [default: every address (0.0.0.0/0)].
    #[arg(short = 'd', long = "dst", value_parser = parse_prefix)]
    dst: Option<(IpAddr, u8)>,
    /// Destination ports: a port, a range FIRST:LAST, or a comma list of both (80,443,8000:8080)
    /// [default: all].
    #[arg(long, value_parser = parse_ports)]
    dport: Option<Ports>,
    /// IPv6 (only needed without --dst: every IPv6 address).
    #[arg(short = '6', long)]
    ipv6: bool,
}

/// `--dport`'s ranges (a newtype: clap would take a bare Vec for a repeated option).
#[derive(Clone)]
struct Ports(Vec<(u16, u16)>);

#[derive(Clone, Copy)]
enum Proto {
    One(Protocol),
    All,
}

fn parse_mark(s: &str) -> std::result::Result<u32, String> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("`{s}` is not a mark (1-4294967295)"))?;
    if v == 0 {
        return Err("0 is no mark (1-4294967295)".into());
    }
    Ok(v)
}

fn parse_proto(s: &str) -> std::result::Result<Proto, String> {
    match s {
        "tcp" => Ok(Proto::One(Protocol::Tcp)),
        "udp" => Ok(Proto::One(Protocol::Udp)),
        "all" => Ok(Proto::All),
        _ => Err(format!("`{s}`: tcp, udp or all")),
    }
}

fn parse_prefix(s: &str) -> std::result::Result<(IpAddr, u8), String> {
    fwmark_import::prefix(s)
}

fn parse_ports(s: &str) -> std::result::Result<Ports, String> {
    s.split(',')
        .map(fwmark_import::port_range)
        .collect::<std::result::Result<_, _>>()
        .map(Ports)
}

impl RuleArgs {
    /// The rules these arguments stand for (one per protocol and port range).
    fn rules(&self) -> Result<Vec<FwmarkRule>> {
        let protos = match self.proto {
            Proto::One(p) => vec![p],
            Proto::All if self.dport.is_some() => {
                bail!("--dport needs -p tcp or -p udp")
            }
            Proto::All => vec![Protocol::Tcp, Protocol::Udp],
        };
        let (net, plen) = match self.dst {
            Some((a, _)) if self.ipv6 && a.is_ipv4() => {
                bail!("-d {a}: an IPv4 address with -6")
            }
            Some(d) => d,
            None if self.ipv6 => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        };
        let ports = match &self.dport {
            Some(p) => p.0.clone(),
            None => vec![(0, 65535)],
        };
        let mut out = Vec::new();
        for p in protos {
            for range in &ports {
                out.push(
                    FwmarkRule::new(self.mark, p, net, plen, *range).map_err(anyhow::Error::msg)?,
                );
            }
        }
        Ok(out)
    }
}

pub fn run(opts: &Options, cmd: FwmarkCommand) -> Result<()> {
    match cmd {
        FwmarkCommand::Add(args) => {
            let rules = args.rules()?;
            let mut dp = Dataplane::open(opts)?;
            dp.add_fwmark_rules(&rules).map_err(|e| match e {
                FwmarkError::Refused(r) => anyhow::anyhow!("{}", r.message),
                FwmarkError::Dataplane(e) => e.into(),
            })?;
        }
        FwmarkCommand::Del(args) => {
            let rules = args.rules()?;
            let mut dp = Dataplane::open(opts)?;
            let present = dp.fwmark_rules()?;
            if let Some(r) = rules.iter().find(|r| !present.contains(r)) {
                bail!("no such rule: {r}");
            }
            for r in &rules {
                dp.del_fwmark_rule(r)?;
            }
        }
        FwmarkCommand::List => {
            let mut dp = Dataplane::open(opts)?;
            for r in dp.fwmark_rules()? {
                println!("{r}");
            }
        }
        FwmarkCommand::Flush => {
            Dataplane::open(opts)?.replace_fwmark_rules(&[])?;
        }
        FwmarkCommand::Import {
            file,
            replace,
            dry_run,
        } => import(opts, file, replace, dry_run)?,
    }
    Ok(())
}

fn import(opts: &Options, file: Option<PathBuf>, replace: bool, dry_run: bool) -> Result<()> {
    let (name, text) = match file.filter(|f| f.as_os_str() != "-") {
        Some(f) => (
            f.display().to_string(),
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?,
        ),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            ("<stdin>".to_string(), s)
        }
    };
    let parsed = if dataplane::fwmark_nft::is_nft(&text) {
        dataplane::fwmark_nft::parse(&text)
    } else {
        fwmark_import::parse(&text)
    }
    .map_err(|n| anyhow::anyhow!("{name}:{n}"))?;
    for note in &parsed.skipped {
        eprintln!("{name}:{note}");
    }
    let mut dp = if dry_run && replace {
        None
    } else {
        Some(Dataplane::open(opts)?)
    };
    let existing = match (&mut dp, replace) {
        (Some(dp), false) => dp.fwmark_rules()?,
        _ => Vec::new(),
    };
    // Importing the same file again adds nothing and is no error.
    let lines: Vec<(usize, FwmarkRule)> = parsed
        .rules()
        .into_iter()
        .filter(|(_, r)| !existing.contains(r))
        .collect();
    let rules: Vec<FwmarkRule> = lines.iter().map(|(_, r)| *r).collect();
    let refused = |index: usize, message: &str| {
        anyhow::anyhow!(
            "{name}:line {}: {message}; nothing imported",
            lines.get(index).map(|(l, _)| *l).unwrap_or(0)
        )
    };
    if let Err(r) = dataplane::fwmark::check(&existing, &rules) {
        return Err(refused(r.index, &r.message));
    }
    let Some(dp) = dp.as_mut().filter(|_| !dry_run) else {
        for (line, r) in &lines {
            println!("{r}\t# line {line}");
        }
        return Ok(());
    };
    let result = if replace {
        dp.replace_fwmark_rules(&rules)
    } else {
        dp.add_fwmark_rules(&rules)
    };
    match result {
        Ok(()) => {
            println!("imported {} rules", rules.len());
            Ok(())
        }
        Err(FwmarkError::Refused(r)) => Err(refused(r.index, &r.message)),
        Err(FwmarkError::Dataplane(e)) => Err(e.into()),
    }
}
