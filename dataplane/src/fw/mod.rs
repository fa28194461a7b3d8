//! The firewall in front of the balancer (`xlvs fw`): allow/deny rules by source prefix or
//! range, protocol, destination ports, global or scoped to one destination address, and a
//! default policy for traffic to this host. The packet path (ebpf `fw.rs`) checks them for
//! packets of no connection, before the service lookup.
//!
//! A change builds the whole new rule set under the generation of `FW_TRIE` not in use, then
//! switches to it with one write of `CONFIG[FW]`, then removes the old generation: no packet
//! sees half a set, and a refused or failed change leaves the running set as it was. Each rule
//! keeps its id (its counter in `FW_HITS`) while it exists. The running set is recorded in the
//! data plane's run directory (`rules.json`, the `save` format with ids), since bpffs holds no
//! files.
//!
//! The rate limits (ICMP, per-source connection budgets per VIP) are not generations: each is
//! written in place (keeping its drop counter) before the switch that turns it on, and removed
//! after the switch that turns it off.
//!
//! Modules: `rule` (the model and its parsing), `range` (START-END as prefixes), `compile`
//! (rules -> trie entries, precedence, refusals), `limit` (rate limits), `file` (the JSON
//! format).

mod batch;
pub mod compile;
pub mod file;
pub mod limit;
pub mod range;
pub mod rule;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aya::maps::lpm_trie::Key;
use aya::maps::{Array, HashMap as BpfHashMap, LpmTrie, Map, MapData};
use ebpf_common::{
    AF_INET, AF_INET6, FwEntry, FwKey, FwLimit, FwScopedKey, FwVipKey, MAX_FW_CONN_LIMITS,
    MAX_FW_RULES, config, fw, maps as names,
};

use crate::error::{Error, Result};
use crate::lock::WriteLock;
use crate::shared::SharedArray;
use crate::{Options, loader, rundir};

pub use compile::{Numbered, Refused};
use compile::{Table, TrieEntry};
pub use file::RuleSet;
pub use limit::{Limit, Limits};
pub use rule::{Action, Policy, Ports, Proto, Rule, Source};

/// Why a firewall change was not made (the running set is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum FwError {
    /// The rule set itself is wrong: what, and which rule.
    #[error("{0}")]
    Refused(String),
    /// A map operation failed.
    #[error(transparent)]
    Dataplane(#[from] Error),
}

/// A firewall operation's result.
pub type FwResult<T> = std::result::Result<T, FwError>;

/// What a change cost, for `restore`'s report and the benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct Applied {
    /// Rules in the set.
    pub rules: usize,
    /// Map entries written.
    pub prefixes: usize,
    /// Checking and compiling the rules.
    pub compile: Duration,
    /// Writing the new generation's entries, up to the switch.
    pub write: Duration,
    /// After the switch: recording the new set, removing the old generation's entries.
    pub cleanup: Duration,
}

/// Parses a rule in the command-line form `allow|deny SRC [-p P] [--dport N[:M]] [--vip A]`
/// (as `xlvs fw list` prints it).
pub fn parse_rule(text: &str) -> std::result::Result<Rule, String> {
    let mut words = text.split_whitespace();
    let action = match words.next() {
        Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        Some(w) => return Err(format!("`{w}` is neither allow nor deny (in `{text}`)")),
        None => return Err("an empty rule".into()),
    };
    let src: Source = words
        .next()
        .ok_or_else(|| format!("`{text}`: no source"))?
        .parse()?;
    let (mut proto, mut dport, mut vip) = (None, None, None);
    while let Some(opt) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("`{text}`: {opt} needs a value"))?;
        match opt {
            "-p" | "--proto" => proto = Some(value.parse()?),
            "--dport" => dport = Some(value.parse()?),
            "--vip" => {
                vip = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--vip `{value}` is no IPv4 or IPv6 address"))?,
                )
            }
            _ => return Err(format!("`{text}`: unknown option `{opt}`")),
        }
    }
    Rule::new(action, src, proto, dport, vip)
}

/// The firewall's maps and its record of the running set.
pub struct Firewall {
    pin_dir: PathBuf,
    trie: LpmTrie<MapData, FwKey, FwEntry>,
    scoped: LpmTrie<MapData, FwScopedKey, FwEntry>,
    /// FW_HOSTS, written in batches (raw) and walked for sweeps (typed).
    hosts: MapData,
    hosts_typed: BpfHashMap<MapData, FwKey, FwEntry>,
    config: Array<MapData, u32>,
    hits: SharedArray<AtomicU64>,
    icmp_limit: Array<MapData, FwLimit>,
    conn_limits: BpfHashMap<MapData, FwVipKey, FwLimit>,
}

impl Firewall {
    /// Opens the firewall of the data plane, loading it (not attached) if needed.
    pub fn open(opts: &Options) -> Result<Firewall> {
        loader::ensure_loaded(opts)?;
        let dir = &opts.pin_dir;
        let open = |name: &str| -> Result<MapData> {
            MapData::from_pin(dir.join(name)).map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open pinned map {}: {e}",
                    dir.join(name).display()
                ))
            })
        };
        let layout = |name: &str, e: aya::maps::MapError| {
            Error::Unavailable(format!("map {name} has an unexpected layout: {e}"))
        };
        Ok(Firewall {
            pin_dir: dir.clone(),
            trie: LpmTrie::try_from(Map::LpmTrie(open(names::FW_TRIE)?))
                .map_err(|e| layout(names::FW_TRIE, e))?,
            scoped: LpmTrie::try_from(Map::LpmTrie(open(names::FW_SCOPED)?))
                .map_err(|e| layout(names::FW_SCOPED, e))?,
            hosts: open(names::FW_HOSTS)?,
            hosts_typed: BpfHashMap::try_from(Map::HashMap(open(names::FW_HOSTS)?))
                .map_err(|e| layout(names::FW_HOSTS, e))?,
            config: Array::try_from(Map::Array(open(names::CONFIG)?))
                .map_err(|e| layout(names::CONFIG, e))?,
            hits: SharedArray::open(dir, names::FW_HITS, 8)?,
            icmp_limit: Array::try_from(Map::Array(open(names::FW_ICMP_LIMIT)?))
                .map_err(|e| layout(names::FW_ICMP_LIMIT, e))?,
            conn_limits: BpfHashMap::try_from(Map::HashMap(open(names::FW_CONN_LIMITS)?))
                .map_err(|e| layout(names::FW_CONN_LIMITS, e))?,
        })
    }

    fn record_path(&self) -> PathBuf {
        rundir::dir(&self.pin_dir, "fw").join("rules.json")
    }

    /// Marks a change in progress: a change that finds it knows the generation not in use may
    /// hold entries of a change that died half-way.
    fn pending_path(&self) -> PathBuf {
        rundir::dir(&self.pin_dir, "fw").join("pending")
    }

    /// The running rule set (empty, policy accept, when none was ever set).
    pub fn current(&self) -> Result<RuleSet> {
        let path = self.record_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                file::parse(&text, &path.display().to_string(), true).map_err(Error::Unavailable)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuleSet::default()),
            Err(e) => Err(Error::map(format!("read {}", path.display()), e)),
        }
    }

    /// Packets rule `id` matched.
    pub fn hits(&self, id: u32) -> u64 {
        self.hits
            .slot(id)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Adds a rule (refused when it exists, or contradicts one).
    pub fn add(&mut self, rule: Rule) -> FwResult<Applied> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        if let Some(n) = cur
            .rules
            .iter()
            .find(|n| n.rule.matcher() == rule.matcher())
        {
            return Err(FwError::Refused(if n.rule.action == rule.action {
                format!("`{rule}` exists already")
            } else {
                format!(
                    "`{rule}` contradicts `{}`: the same packets with the opposite verdict \
                     (delete it first)",
                    n.rule
                )
            }));
        }
        let mut rules: Vec<Rule> = cur.rules.iter().map(|n| n.rule).collect();
        rules.push(rule);
        self.apply(&cur, cur.policy, &rules, &cur.limits)
    }

    /// Removes a rule, given as added (or as listed).
    pub fn del(&mut self, rule: Rule) -> FwResult<Applied> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        if !cur.rules.iter().any(|n| n.rule == rule) {
            return Err(FwError::Refused(format!("no rule `{rule}`")));
        }
        let rules: Vec<Rule> = cur
            .rules
            .iter()
            .map(|n| n.rule)
            .filter(|r| *r != rule)
            .collect();
        self.apply(&cur, cur.policy, &rules, &cur.limits)
    }

    /// Removes every rule (the policy stays).
    pub fn flush(&mut self) -> FwResult<Applied> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        self.apply(&cur, cur.policy, &[], &cur.limits)
    }

    /// Changes the default policy, keeping the rules.
    pub fn set_policy(&mut self, policy: Policy) -> FwResult<Applied> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        let rules: Vec<Rule> = cur.rules.iter().map(|n| n.rule).collect();
        self.apply(&cur, policy, &rules, &cur.limits)
    }

    /// Sets (or with `None` removes) the ICMP rate limit.
    pub fn set_icmp_limit(&mut self, limit: Option<Limit>) -> FwResult<()> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        let mut limits = cur.limits.clone();
        limits.icmp = limit;
        self.apply_limits(&cur, &limits)
    }

    /// Sets (or with `None` removes) the per-source connection budget towards `vip`.
    pub fn set_conn_limit(&mut self, vip: IpAddr, limit: Option<Limit>) -> FwResult<()> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        let mut limits = cur.limits.clone();
        match limit {
            Some(l) => {
                limits.conn.insert(vip, l);
            }
            None => {
                if limits.conn.remove(&vip).is_none() {
                    return Err(FwError::Refused(format!("no conn-limit for {vip}")));
                }
            }
        }
        self.apply_limits(&cur, &limits)
    }

    /// Packets dropped over the ICMP limit.
    pub fn icmp_dropped(&self) -> u64 {
        self.icmp_limit.get(&0, 0).map(|l| l.dropped).unwrap_or(0)
    }

    /// Packets dropped over each limit as the maps hold them (for exporters: no record
    /// needed): the ICMP limit's (when set), each VIP's budget's.
    pub fn limit_drops(&self) -> (Option<u64>, Vec<(IpAddr, u64)>) {
        let icmp = self
            .icmp_limit
            .get(&0, 0)
            .ok()
            .filter(|l| l.interval_ns != 0)
            .map(|l| l.dropped);
        let conn = self
            .conn_limits
            .iter()
            .filter_map(|e| e.ok())
            .map(|(k, l)| {
                let family = if k.af == AF_INET6 {
                    crate::model::Family::V6
                } else {
                    crate::model::Family::V4
                };
                (crate::model::words_to_ip(&k.vip, family), l.dropped)
            })
            .collect();
        (icmp, conn)
    }

    /// Packets dropped over `vip`'s connection budget.
    pub fn conn_dropped(&self, vip: IpAddr) -> u64 {
        self.conn_limits
            .get(&vip_key(vip), 0)
            .map(|l| l.dropped)
            .unwrap_or(0)
    }

    /// Replaces the whole rule set (`restore`): all of it or nothing. Rules that were running
    /// already keep their counters.
    pub fn replace(&mut self, set: &RuleSet) -> FwResult<Applied> {
        let _lock = WriteLock::acquire(&self.pin_dir)?;
        let cur = self.current()?;
        // Rules listed twice, or contradicting each other, are refused by the compiler.
        let rules: Vec<Rule> = set.rules.iter().map(|n| n.rule).collect();
        self.apply(&cur, set.policy, &rules, &set.limits)
    }

    /// Builds `rules` under the unused generation, writes `limits`, switches, records, removes
    /// the old generation and the limits no longer set.
    fn apply(
        &mut self,
        cur: &RuleSet,
        policy: Policy,
        rules: &[Rule],
        limits: &Limits,
    ) -> FwResult<Applied> {
        let started = Instant::now();
        check_limits(limits)?;
        if rules.len() > MAX_FW_RULES as usize {
            return Err(FwError::Refused(format!(
                "{} rules: at most {MAX_FW_RULES} can exist",
                rules.len()
            )));
        }
        let (numbered, fresh) = number(cur, rules);
        let compiled = compile::compile(&numbered).map_err(|e| FwError::Refused(e.to_string()))?;
        let mut applied = Applied {
            rules: rules.len(),
            prefixes: compiled.entries.len(),
            compile: started.elapsed(),
            ..Default::default()
        };

        let written = Instant::now();
        let state = self.state()?;
        let old_gen = (state & fw::STATE_GEN1 != 0) as u8;
        let new_gen = 1 - old_gen;
        let pending = self.pending_path();
        if pending.exists() {
            self.sweep(new_gen)?;
        }
        rundir::write_atomic(&pending, "")
            .map_err(|e| Error::map(format!("write {}", pending.display()), e))?;
        if let Err(e) = self
            .write_entries(&compiled.entries, new_gen)
            .and_then(|()| self.write_limits(limits))
        {
            // Take back what was written: the running set never saw it.
            self.remove_entries(&compiled.entries, new_gen);
            let _ = std::fs::remove_file(&pending);
            return Err(e.into());
        }
        for id in fresh {
            if let Some(c) = self.hits.slot(id) {
                c.store(0, Ordering::Relaxed);
            }
        }
        let mut word = 0;
        for (table, bit) in [
            (Table::Prefixes, fw::STATE_RULES),
            (Table::Hosts, fw::STATE_HOSTS),
            (Table::Scoped, fw::STATE_SCOPED),
        ] {
            if compiled.has(table) {
                word |= bit;
            }
        }
        if new_gen == 1 {
            word |= fw::STATE_GEN1;
        }
        if policy == Policy::Drop {
            word |= fw::STATE_POLICY_DROP;
        }
        word |= limit_bits(limits);
        // The switch: from here on every packet sees the new set.
        self.config
            .set(config::FW, word, 0)
            .map_err(|e| crate::maps::err("firewall state", e))?;
        applied.write = written.elapsed();

        let cleaned = Instant::now();
        let record = RuleSet {
            policy,
            rules: numbered,
            limits: limits.clone(),
        };
        self.record(&record)?;
        self.remove_limits(&cur.limits, limits);
        match compile::compile(&cur.rules) {
            Ok(old) => self.remove_entries(&old.entries, old_gen),
            Err(_) => self.sweep(old_gen)?,
        }
        let _ = std::fs::remove_file(&pending);
        applied.cleanup = cleaned.elapsed();
        Ok(applied)
    }

    /// A change of the rate limits alone: written in place, the limit bits switched in the
    /// state word (the rules' generation untouched).
    fn apply_limits(&mut self, cur: &RuleSet, limits: &Limits) -> FwResult<()> {
        check_limits(limits)?;
        self.write_limits(limits)?;
        let state = self.state()?;
        let word = state & !(fw::STATE_ICMP_LIMIT | fw::STATE_CONN_LIMIT) | limit_bits(limits);
        self.config
            .set(config::FW, word, 0)
            .map_err(|e| crate::maps::err("firewall state", e))?;
        let record = RuleSet {
            limits: limits.clone(),
            ..cur.clone()
        };
        self.record(&record)?;
        self.remove_limits(&cur.limits, limits);
        Ok(())
    }

    fn record(&self, set: &RuleSet) -> Result<()> {
        let path = self.record_path();
        rundir::write_atomic(&path, &file::render(set, true))
            .map_err(|e| Error::map(format!("write {}", path.display()), e))
    }

    /// Writes every limit of `limits` in place, keeping the drop counter of one that exists.
    fn write_limits(&mut self, limits: &Limits) -> Result<()> {
        if let Some(l) = limits.icmp {
            let old = self.icmp_limit.get(&0, 0).unwrap_or_default();
            let new = FwLimit {
                dropped: old.dropped,
                ..l.abi()
            };
            if (new.interval_ns, new.tolerance_ns) != (old.interval_ns, old.tolerance_ns) {
                self.icmp_limit
                    .set(0, new, 0)
                    .map_err(|e| crate::maps::err("firewall ICMP limit", e))?;
            }
        }
        for (vip, l) in &limits.conn {
            let key = vip_key(*vip);
            let old = self.conn_limits.get(&key, 0).ok();
            let new = FwLimit {
                dropped: old.map(|o| o.dropped).unwrap_or(0),
                ..l.abi()
            };
            if old.map(|o| (o.interval_ns, o.tolerance_ns))
                != Some((new.interval_ns, new.tolerance_ns))
            {
                self.conn_limits
                    .insert(key, new, 0)
                    .map_err(|e| crate::maps::err("firewall connection budget", e))?;
            }
        }
        Ok(())
    }

    /// Removes the limits of `old` that `new` no longer has (after the switch turned them off).
    fn remove_limits(&mut self, old: &Limits, new: &Limits) {
        if old.icmp.is_some() && new.icmp.is_none() {
            let _ = self.icmp_limit.set(0, FwLimit::default(), 0);
        }
        for vip in old.conn.keys().filter(|v| !new.conn.contains_key(v)) {
            let _ = self.conn_limits.remove(&vip_key(*vip));
        }
    }

    fn state(&self) -> Result<u32> {
        self.config
            .get(&config::FW, 0)
            .map_err(|e| crate::maps::err("firewall state", e))
    }

    /// Writes `entries` under `generation`: whole addresses in batches, prefixes one by one.
    fn write_entries(&mut self, entries: &[TrieEntry], generation: u8) -> Result<()> {
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for e in entries {
            match e.table {
                Table::Hosts => {
                    keys.push(e.key(generation));
                    values.push(e.value);
                }
                Table::Prefixes => self
                    .trie
                    .insert(&Key::new(e.prefix_len(), e.key(generation)), e.value, 0)
                    .map_err(|err| crate::maps::err("firewall rules", err))?,
                Table::Scoped => self
                    .scoped
                    .insert(
                        &Key::new(e.prefix_len(), e.scoped_key(generation)),
                        e.value,
                        0,
                    )
                    .map_err(|err| crate::maps::err("firewall rules", err))?,
            }
        }
        batch::update(&self.hosts, &keys, &values)
            .map_err(|e| Error::map("firewall rules (whole addresses)", e))
    }

    fn remove_entries(&mut self, entries: &[TrieEntry], generation: u8) {
        let mut hosts = Vec::new();
        for e in entries {
            // Absent already (a record older than the maps): nothing to do.
            match e.table {
                Table::Hosts => hosts.push(e.key(generation)),
                Table::Prefixes => {
                    let _ = self
                        .trie
                        .remove(&Key::new(e.prefix_len(), e.key(generation)));
                }
                Table::Scoped => {
                    let _ = self
                        .scoped
                        .remove(&Key::new(e.prefix_len(), e.scoped_key(generation)));
                }
            }
        }
        let _ = batch::delete(&self.hosts, &hosts);
    }

    /// Removes every entry of `generation` (after a change that died half-way).
    fn sweep(&mut self, generation: u8) -> Result<()> {
        let keys: Vec<Key<FwKey>> = self
            .trie
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| k.data().generation == generation)
            .collect();
        for k in keys {
            let _ = self.trie.remove(&k);
        }
        let keys: Vec<Key<FwScopedKey>> = self
            .scoped
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| k.data().generation == generation)
            .collect();
        for k in keys {
            let _ = self.scoped.remove(&k);
        }
        let hosts: Vec<FwKey> = self
            .hosts_typed
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| k.generation == generation)
            .collect();
        batch::delete(&self.hosts, &hosts).map_err(|e| Error::map("firewall sweep", e))
    }
}

fn vip_key(vip: IpAddr) -> FwVipKey {
    FwVipKey {
        af: if vip.is_ipv6() { AF_INET6 } else { AF_INET },
        _pad: [0; 3],
        vip: crate::model::ip_to_words(&vip),
    }
}

/// The state word's bits for the limits set.
fn limit_bits(limits: &Limits) -> u32 {
    let mut bits = 0;
    if limits.icmp.is_some() {
        bits |= fw::STATE_ICMP_LIMIT;
    }
    if !limits.conn.is_empty() {
        bits |= fw::STATE_CONN_LIMIT;
    }
    bits
}

fn check_limits(limits: &Limits) -> FwResult<()> {
    if limits.conn.len() > MAX_FW_CONN_LIMITS as usize {
        return Err(FwError::Refused(format!(
            "{} connection budgets: at most {MAX_FW_CONN_LIMITS} VIPs can have one",
            limits.conn.len()
        )));
    }
    Ok(())
}

/// Gives each rule an id: a rule that is running keeps its own (and its counter); a new one
/// takes the lowest id free in both the old and the new set, or else one the old set frees.
/// Also returns the ids given to new rules (their counters start from zero).
fn number(cur: &RuleSet, rules: &[Rule]) -> (Vec<Numbered>, Vec<u32>) {
    if cur.rules.is_empty() {
        // A first set (a restore at boot): nothing to keep.
        let numbered: Vec<Numbered> = (0..)
            .zip(rules)
            .map(|(id, rule)| Numbered { id, rule: *rule })
            .collect();
        let fresh = numbered.iter().map(|n| n.id).collect();
        return (numbered, fresh);
    }
    let mut old: HashMap<Rule, u32> = cur.rules.iter().map(|n| (n.rule, n.id)).collect();
    let mut used = vec![false; MAX_FW_RULES as usize];
    for n in &cur.rules {
        if let Some(u) = used.get_mut(n.id as usize) {
            *u = true;
        }
    }
    let mut kept: Vec<Option<u32>> = rules.iter().map(|r| old.remove(r)).collect();
    // Ids the old set frees: used last, so a deleted rule's late hits rarely land on a new one.
    let mut freed = old.into_values();
    let mut next_free = (0..MAX_FW_RULES).filter(|id| !used[*id as usize]);
    let mut fresh = Vec::new();
    for id in kept.iter_mut() {
        if id.is_none() {
            *id = next_free.next().or_else(|| freed.next());
            fresh.extend(*id);
        }
    }
    let numbered = rules
        .iter()
        .zip(kept)
        .map(|(rule, id)| Numbered {
            id: id.expect("fewer rules than ids"),
            rule: *rule,
        })
        .collect();
    (numbered, fresh)
}
