//! `xlvs fw`: the firewall in front of the balancer. Rules allow or deny packets of no
//! connection by source (prefix or range), protocol, destination ports, globally or for one
//! destination address; the policy says what happens to traffic to this host that no rule
//! matches. Every change is all or nothing: a refused one leaves the running set as it was.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use dataplane::fw::{
    Action, Applied, Firewall, FwError, Limit, Numbered, Policy, Ports, Proto, Rule, RuleSet,
    Source, file,
};
use dataplane::stats::COUNTER_NAMES;
use dataplane::{Dataplane, Options};

#[derive(Subcommand)]
pub enum FwCommand {
    /// Allow packets from SRC (rules are checked for packets of no connection, before the
    /// service lookup; the longest matching source prefix decides).
    Allow(RuleArgs),
    /// Drop packets from SRC.
    Deny(RuleArgs),
    /// Default for traffic to this host (not to a VIP) that no rule matches: accept (default)
    /// or drop. ARP, IPv6 neighbour discovery and ICMP errors always pass.
    Policy {
        #[arg(value_parser = parse_policy)]
        policy: Policy,
    },
    /// List the policy and the rules (in `allow`/`deny` syntax) with the packets each matched.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule: `xlvs fw del deny 198.18.0.0/24 -p tcp` (as added, or as listed).
    Del {
        #[arg(value_enum)]
        action: ActionArg,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Remove every rule (the policy stays).
    Flush,
    /// Write the policy and rules to FILE (JSON, versioned; `-`: standard output).
    Save { file: PathBuf },
    /// Replace the policy, rules and limits by FILE's (as written by `save`); all or nothing.
    Restore { file: PathBuf },
    /// Rate-limit ICMP/ICMPv6 messages that are not errors or neighbour discovery (echo
    /// requests and the like, to this host and the VIPs), all sources together: RATE packets
    /// per second (`10`, `10/s`) or minute (`600/m`); `off` removes the limit.
    IcmpLimit {
        rate: String,
        /// Packets that may come at once (default: RATE's number).
        #[arg(long)]
        burst: Option<u32>,
    },
    /// Give each source a budget of new connections towards VIP: RATE per second or minute
    /// (`100/s`, `600/m`; IPv6 sources per /64). A SYN or UDP datagram that would open a
    /// connection over it is dropped before SYNPROXY's cookie or the connection table; `off`
    /// removes the budget.
    ConnLimit {
        #[arg(long)]
        vip: IpAddr,
        rate: String,
        /// Connections a source may open at once (default: RATE's number).
        #[arg(long)]
        burst: Option<u32>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Allow,
    Deny,
}

#[derive(Args)]
pub struct RuleArgs {
    /// Source: an address, a prefix (198.18.0.0/24, 2001:db8::/32) or a range START-END.
    #[arg(value_parser = parse_source)]
    src: Source,
    /// Only this protocol: tcp, udp or icmp (ICMPv6 for IPv6 sources).
    #[arg(short = 'p', long = "proto", value_parser = parse_proto)]
    proto: Option<Proto>,
    /// Only these destination ports: N or N:M (needs -p tcp or udp).
    #[arg(long, value_parser = parse_ports)]
    dport: Option<Ports>,
    /// Only packets to this destination address (a VIP or an address of this host).
    #[arg(long)]
    vip: Option<IpAddr>,
}

fn parse_source(s: &str) -> std::result::Result<Source, String> {
    s.parse()
}
fn parse_proto(s: &str) -> std::result::Result<Proto, String> {
    s.parse()
}
fn parse_ports(s: &str) -> std::result::Result<Ports, String> {
    s.parse()
}
fn parse_policy(s: &str) -> std::result::Result<Policy, String> {
    s.parse()
}

impl RuleArgs {
    fn rule(&self, action: Action) -> Result<Rule> {
        Rule::new(action, self.src, self.proto, self.dport, self.vip).map_err(|e| anyhow!(e))
    }
}

/// A refused change as one error (the CLI's and the HTTP API's wording).
pub fn refused(e: FwError) -> anyhow::Error {
    match e {
        FwError::Refused(m) => anyhow!("{m}; the rules are unchanged"),
        FwError::Dataplane(e) => e.into(),
    }
}

pub fn run(opts: &Options, command: FwCommand) -> Result<()> {
    match command {
        FwCommand::Allow(args) => {
            let rule = args.rule(Action::Allow)?;
            Firewall::open(opts)?.add(rule).map_err(refused)?;
        }
        FwCommand::Deny(args) => {
            let rule = args.rule(Action::Deny)?;
            Firewall::open(opts)?.add(rule).map_err(refused)?;
        }
        FwCommand::Del { action, rule } => {
            let action = match action {
                ActionArg::Allow => Action::Allow,
                ActionArg::Deny => Action::Deny,
            };
            let rule = rule.rule(action)?;
            Firewall::open(opts)?.del(rule).map_err(refused)?;
        }
        FwCommand::Policy { policy } => {
            Firewall::open(opts)?.set_policy(policy).map_err(refused)?;
        }
        FwCommand::Flush => {
            Firewall::open(opts)?.flush().map_err(refused)?;
        }
        FwCommand::List { json } => list(opts, json)?,
        FwCommand::Save { file: path } => {
            let fw = Firewall::open(opts)?;
            let text = file::render(&fw.current()?, false);
            if path.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        FwCommand::Restore { file: path } => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let set = file::parse(&text, &path.display().to_string(), false)
                .map_err(|e| anyhow!("{e}; the rules are unchanged"))?;
            let applied = Firewall::open(opts)?.replace(&set).map_err(refused)?;
            report(&set, &applied);
        }
        FwCommand::IcmpLimit { rate, burst } => {
            let limit = limit_arg(&rate, burst)?;
            Firewall::open(opts)?
                .set_icmp_limit(limit)
                .map_err(refused)?;
        }
        FwCommand::ConnLimit { vip, rate, burst } => {
            let limit = limit_arg(&rate, burst)?;
            Firewall::open(opts)?
                .set_conn_limit(vip, limit)
                .map_err(refused)?;
        }
    }
    Ok(())
}

/// A limit from the command line: `off` (none) or RATE with an optional burst.
fn limit_arg(rate: &str, burst: Option<u32>) -> Result<Option<Limit>> {
    if rate == "off" {
        if burst.is_some() {
            return Err(anyhow!("--burst makes no sense with `off`"));
        }
        return Ok(None);
    }
    Limit::new(rate, burst).map(Some).map_err(|e| anyhow!(e))
}

fn report(set: &RuleSet, a: &Applied) {
    println!(
        "restored {} rules ({} prefixes), policy {}: compiled in {:.3} s, switched after {:.3} s \
         more, old set removed in {:.3} s",
        a.rules,
        a.prefixes,
        set.policy.name(),
        a.compile.as_secs_f64(),
        a.write.as_secs_f64(),
        a.cleanup.as_secs_f64()
    );
}

fn list(opts: &Options, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&listing(opts)?)?);
        return Ok(());
    }
    let fw = Firewall::open(opts)?;
    let set = fw.current()?;
    println!("policy {}", set.policy.name());
    if let Some(l) = set.limits.icmp {
        println!("icmp-limit {l}\t# {} dropped", fw.icmp_dropped());
    }
    for (vip, l) in &set.limits.conn {
        println!(
            "conn-limit --vip {vip} {l}\t# {} dropped",
            fw.conn_dropped(*vip)
        );
    }
    for n in &set.rules {
        println!("{}\t# {} packets", n.rule, fw.hits(n.id));
    }
    Ok(())
}

/// The policy, limits, rules with their counters and the verdict counters, as `xlvs fw list
/// --json` prints them (and the HTTP API's `GET /fw` answers).
pub fn listing(opts: &Options) -> Result<serde_json::Value> {
    let fw = Firewall::open(opts)?;
    let set = fw.current()?;
    let counters = Dataplane::open(opts)?.counters()?;
    // The firewall's global verdict counters (fw_denied, fw_allowed, fw_policy_drop).
    let verdicts: serde_json::Map<String, serde_json::Value> = COUNTER_NAMES
        .iter()
        .filter(|(_, name)| name.starts_with("fw_"))
        .map(|(i, name)| {
            let v = counters.get(*i as usize).copied().unwrap_or(0);
            (name.to_string(), v.into())
        })
        .collect();
    let rules: Vec<_> = set.rules.iter().map(|n| rule_json(&fw, n)).collect();
    let icmp_limit = set.limits.icmp.map(|l| {
        serde_json::json!({"rate": l.rate_text(), "burst": l.burst, "dropped": fw.icmp_dropped()})
    });
    let conn_limits: Vec<_> = set
        .limits
        .conn
        .iter()
        .map(|(vip, l)| {
            serde_json::json!({
                "vip": vip.to_string(),
                "rate": l.rate_text(),
                "burst": l.burst,
                "dropped": fw.conn_dropped(*vip),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "policy": set.policy.name(),
        "icmp_limit": icmp_limit,
        "conn_limits": conn_limits,
        "rules": rules,
        "counters": verdicts,
    });
    Ok(doc)
}

/// A running rule as listed: its id, text, fields and the packets it matched.
pub fn rule_json(fw: &Firewall, n: &Numbered) -> serde_json::Value {
    serde_json::json!({
        "id": n.id,
        "rule": n.rule.to_string(),
        "action": n.rule.action.name(),
        "src": n.rule.src.to_string(),
        "proto": n.rule.proto.map(|p| p.name()),
        "dport": n.rule.dport.map(|p| p.to_string()),
        "vip": n.rule.vip.map(|v| v.to_string()),
        "packets": fw.hits(n.id),
    })
}
