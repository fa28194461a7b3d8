//! The VRRP daemon: the state machines of every instance on real sockets, VIPs through
//! netlink, GARPs, notify scripts, tracking. One task owns everything; socket readers and
//! script checkers are small tasks feeding it through channels.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use keepalived_conf::model::KeepalivedConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::{
    self, Advert, Checksum, Family, IpInfo, MCAST_GROUP4, RxError, RxExpect, RxStats,
};
use crate::config::{self, InstanceConfig};
use crate::link::{self, LinkInfo};
use crate::netlink::{Netlink, Route, Rule, Vip, scope_number};
use crate::noaccept;
use crate::notify::{self, Fifo};
use crate::sock::{RxSocket, TxSocket, group};
use crate::state::{Action, Instance, Micros, Params, Reason, State};
use crate::track::{ScriptStatus, TrackKind, Tracked, effective_priority};

/// Commands from the embedding daemon.
#[derive(Debug)]
pub enum Control {
    /// Apply a new configuration: instances kept by name keep their state.
    Reload(Arc<KeepalivedConfig>),
    /// Stop: masters send priority 0, VIPs are removed, notify_stop scripts run.
    Shutdown,
    /// Current state and receive counters of every instance (for status dumps).
    Status(tokio::sync::oneshot::Sender<Vec<InstanceStatus>>),
}

/// One instance as [`Control::Status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub instance: String,
    pub vrid: u8,
    pub state: State,
    pub effective_priority: u8,
    /// Accepted adverts and drops per reason ([`codec::RX_ERROR_NAMES`]).
    pub rx: RxStats,
    /// Adverts sent, priority-0 adverts, MASTER transitions (keepalived's SIGUSR2 counters).
    pub tx: TxStats,
    /// The vrrp_scripts this instance tracks, and whether each is good now.
    pub scripts: Vec<(String, bool)>,
}

/// The counters keepalived's `keepalived.stats` has beside the receive ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    pub adverts_sent: u64,
    pub pri_zero_sent: u64,
    pub pri_zero_rcvd: u64,
    pub became_master: u64,
    pub released_master: u64,
}

/// A state transition of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEvent {
    pub instance: String,
    pub vrid: u8,
    pub interface: String,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// The instance's VIPs (virtual_ipaddress then virtual_ipaddress_excluded).
    pub vips: Vec<IpAddr>,
}

/// How often interface states and track files are polled.
const POLL: Duration = Duration::from_millis(100);

struct Inst {
    cfg: InstanceConfig,
    sm: Instance,
    link: LinkInfo,
    tx: TxSocket,
    src: IpAddr,
    vips: Vec<Vip>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
    advert_vips: Vec<IpAddr>,
    reader: JoinHandle<()>,
    garp: Option<JoinHandle<()>>,
    stats: RxStats,
    tx_stats: TxStats,
    /// The peer uses the pre-2.x unicast v3 checksum (detected or configured).
    old_checksum: bool,
    /// use_vmac: the macvlan we created (name, index), deleted on stop.
    vmac: Option<(String, u32)>,
}

type Packet = (u64, usize, Vec<u8>, Option<IpInfo>);

struct Engine {
    epoch: Instant,
    nl: Netlink,
    config: Arc<KeepalivedConfig>,
    insts: Vec<Inst>,
    generation: u64,
    pkt_tx: mpsc::Sender<Packet>,
    script_tx: mpsc::Sender<(u64, String, bool)>,
    scripts: HashMap<String, ScriptStatus>,
    script_tasks: Vec<JoinHandle<()>>,
    fifos: Vec<Fifo>,
    events: mpsc::Sender<StateEvent>,
    /// Last state each sync group was notified in.
    group_state: HashMap<String, State>,
}

/// Runs every `vrrp_instance` of `config` until [`Control::Shutdown`] (or the control channel
/// closes). Must run inside a tokio runtime, as root (raw sockets, netlink).
pub async fn run(
    config: Arc<KeepalivedConfig>,
    mut control: mpsc::Receiver<Control>,
    events: mpsc::Sender<StateEvent>,
) -> Result<()> {
    let (pkt_tx, mut pkt_rx) = mpsc::channel::<Packet>(1024);
    let (script_tx, mut script_rx) = mpsc::channel(64);
    let mut e = Engine {
        epoch: Instant::now(),
        nl: Netlink::open().context("netlink")?,
        config: config.clone(),
        insts: Vec::new(),
        generation: 0,
        pkt_tx,
        script_tx,
        scripts: HashMap::new(),
        script_tasks: Vec::new(),
        fifos: Vec::new(),
        events,
        group_state: HashMap::new(),
    };
    e.load(config, &HashMap::new())?;
    let timer = crate::timer::PreciseTimer::new().context("timerfd")?;
    let mut link_events = link::watch().context("netlink link events")?;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = e
            .insts
            .iter()
            .filter_map(|i| i.sm.next_deadline())
            .min()
            .map(|us| e.epoch + Duration::from_micros(us))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some((generation, idx, pkt, info)) = pkt_rx.recv() => {
                if generation == e.generation {
                    e.packet(idx, &pkt, info);
                }
            }
            _ = timer.sleep_until(deadline.into_std()) => {
                let now = e.now();
                for idx in 0..e.insts.len() {
                    if e.insts[idx].sm.master_down_due(now) && e.group_holds_back(idx, now) {
                        e.insts[idx].sm.defer(now);
                        continue;
                    }
                    let actions = e.insts[idx].sm.on_timer(now);
                    e.apply(idx, actions, now);
                }
            }
            Some((generation, name, ok)) = script_rx.recv() => {
                if generation == e.generation
                    && let Some(s) = e.scripts.get_mut(&name)
                    && s.record(ok)
                {
                    log::info!("VRRP_Script({name}) {}", if ok { "succeeded" } else { "failed" });
                    e.retrack();
                }
            }
            _ = poll.tick() => e.retrack(),
            Some(()) = link_events.recv() => e.retrack(),
            c = control.recv() => match c {
                Some(Control::Reload(cfg)) => {
                    let prev: HashMap<String, (State, Vec<Vip>, Vec<Route>)> = e
                        .insts
                        .iter()
                        .map(|i| (i.cfg.name.clone(), (i.sm.state(), i.vips.clone(), i.routes.clone())))
                        .collect();
                    e.stop_tasks();
                    let old = std::mem::take(&mut e.insts);
                    if let Err(err) = e.load(cfg, &prev) {
                        log::error!("reload: {err:#}");
                    }
                    // Addresses of instances gone (or no longer master) are removed.
                    for o in old {
                        if let Some((name, index)) = &o.vmac
                            && !e.insts.iter().any(|i| i.vmac.as_ref().is_some_and(|v| &v.0 == name))
                        {
                            let _ = e.nl.delete_link(*index);
                        }
                        let keeps = e.insts.iter().any(|i| i.cfg.name == o.cfg.name && i.sm.state() == State::Master);
                        if o.sm.state() == State::Master && !keeps {
                            e.remove_addresses(&o.vips, &o.routes);
                            e.remove_rules(&o.rules);
                        } else if o.sm.state() == State::Master {
                            let new = e.insts.iter().find(|i| i.cfg.name == o.cfg.name).map(|i| i.vips.clone()).unwrap_or_default();
                            let gone: Vec<Vip> = o.vips.iter().filter(|v| !new.contains(v)).cloned().collect();
                            e.remove_addresses(&gone, &[]);
                        }
                    }
                }
                Some(Control::Status(reply)) => {
                    let _ = reply.send(
                        e.insts
                            .iter()
                            .map(|i| InstanceStatus {
                                instance: i.cfg.name.clone(),
                                vrid: i.cfg.vrid,
                                state: i.sm.state(),
                                effective_priority: i.sm.effective_priority(),
                                rx: i.stats.clone(),
                                tx: i.tx_stats,
                                scripts: i
                                    .cfg
                                    .track_scripts
                                    .iter()
                                    .map(|t| {
                                        let ok = e.scripts.get(&t.name).is_none_or(|s| s.ok());
                                        (t.name.clone(), ok)
                                    })
                                    .collect(),
                            })
                            .collect(),
                    );
                }
                Some(Control::Shutdown) | None => {
                    e.shutdown();
                    return Ok(());
                }
            },
        }
    }
}

/// Log once per power of two, so a flood of bad packets cannot flood the log.
fn log_drop(name: &str, stats: &RxStats, err: &RxError) {
    if matches!(err, RxError::OtherVrid(_)) {
        return;
    }
    let n = stats.total_dropped();
    if n.is_power_of_two() {
        log::warn!("({name}) {} (dropped {n} so far)", err.message());
    }
}

impl Engine {
    fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }

    /// Builds every instance of `cfg`; instances named in `prev` that were MASTER resume as
    /// MASTER.
    fn load(
        &mut self,
        cfg: Arc<KeepalivedConfig>,
        prev: &HashMap<String, (State, Vec<Vip>, Vec<Route>)>,
    ) -> Result<()> {
        self.generation += 1;
        self.config = cfg.clone();
        self.fifos.clear();
        for p in [&cfg.global.notify_fifo, &cfg.global.vrrp_notify_fifo]
            .into_iter()
            .flatten()
        {
            match Fifo::open(Path::new(p)) {
                Ok(f) => self.fifos.push(f),
                Err(err) => log::warn!("cannot open notify fifo {p}: {err}"),
            }
        }
        for v in &cfg.vrrp_instances {
            let built = config::instance(&cfg, v)
                .map_err(|m| anyhow!(m))
                .and_then(|ic| self.build(ic));
            match built {
                Ok(inst) => self.insts.push(inst),
                // At startup the caller gets the error; on reload the others keep running.
                Err(e) if prev.is_empty() => {
                    self.stop_tasks();
                    return Err(e);
                }
                Err(e) => log::error!("{e:#}"),
            }
        }
        // Scripts referenced by instances or sync groups.
        self.scripts.clear();
        let mut used: Vec<String> = self
            .insts
            .iter()
            .flat_map(|i| i.cfg.track_scripts.iter().map(|t| t.name.clone()))
            .collect();
        for g in &cfg.sync_groups {
            used.extend(g.track_scripts.iter().map(|t| t.name.clone()));
        }
        used.sort();
        used.dedup();
        for name in used {
            let Some(s) = cfg.vrrp_script(&name) else {
                log::warn!("track_script {name} not found, ignoring");
                continue;
            };
            self.scripts
                .insert(name.clone(), ScriptStatus::new(s.rise, s.fall, s.init_fail));
            if let Some(script) = s.script.clone() {
                let interval = Duration::from_secs_f64(s.interval.max(0.01));
                let timeout = Duration::from_secs_f64(s.timeout.unwrap_or(s.interval).max(0.01));
                let tx = self.script_tx.clone();
                let generation = self.generation;
                self.script_tasks.push(tokio::spawn(async move {
                    loop {
                        let ok = notify::run_check(&script, timeout).await;
                        if tx.send((generation, name.clone(), ok)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(interval).await;
                    }
                }));
            }
        }
        let now = self.now();
        // Leftovers from a previous run (killed daemon) go first, as keepalived does.
        for idx in 0..self.insts.len() {
            if !prev.contains_key(&self.insts[idx].cfg.name) {
                let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
                self.remove_addresses(&v, &r);
                let rules = self.insts[idx].rules.clone();
                self.remove_rules(&rules);
            }
        }
        self.retrack_at(now, false);
        for idx in 0..self.insts.len() {
            match prev.get(&self.insts[idx].cfg.name) {
                // Kept across a reload: same state, no notify, no event.
                Some((state, _, _)) => {
                    let actions = self.insts[idx].sm.resume(now, *state);
                    if self.insts[idx].sm.state() == State::Master {
                        let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
                        self.add_addresses(idx, &v, &r);
                    }
                    self.apply(idx, actions, now);
                }
                None => {
                    let actions = self.insts[idx].sm.start(now);
                    self.apply(idx, actions, now);
                }
            }
        }
        Ok(())
    }

    fn build(&mut self, cfg: InstanceConfig) -> Result<Inst> {
        let v6 = cfg.family == Family::V6;
        let link = link::link(&cfg.interface)
            .ok_or_else(|| anyhow!("({}) interface {} doesn't exist", cfg.name, cfg.interface))?;
        let src = if cfg.is_unicast() {
            cfg.unicast_src_ip
        } else {
            cfg.mcast_src_ip
        }
        .or_else(|| link.primary(v6))
        .ok_or_else(|| anyhow!("({}) no source address on {}", cfg.name, cfg.interface))?;
        let ttl = if cfg.is_unicast() {
            cfg.unicast_ttl
        } else {
            255
        };
        let vmac = match &cfg.use_vmac {
            Some(name) => Some(self.create_vmac(&cfg, name, link.index)?),
            None => None,
        };
        // Adverts leave through the vmac (virtual source MAC) unless vmac_xmit_base; IPv6
        // keeps the base interface, which holds the link-local source.
        let (tx_if, tx_index) = match &vmac {
            Some((n, i)) if !cfg.vmac_xmit_base && !v6 => (n.clone(), *i),
            _ => (cfg.interface.clone(), link.index),
        };
        let tx = TxSocket::open(src, &tx_if, tx_index, ttl)
            .with_context(|| format!("({}) send socket", cfg.name))?;
        // With a vmac, multicast from a peer using the same virtual MAC is handed by the
        // macvlan driver to the vmac, not to the base interface; the vmac also sees every
        // other multicast frame. Unicast adverts arrive on the base interface.
        let (rx_if, rx_index) = match &vmac {
            Some((n, i)) if !cfg.is_unicast() && !v6 => (n.clone(), *i),
            _ => (cfg.interface.clone(), link.index),
        };
        let rx = RxSocket::open(v6, &rx_if, rx_index, !cfg.is_unicast())
            .with_context(|| format!("({}) receive socket", cfg.name))?;
        let idx = self.insts.len();
        let pkt_tx = self.pkt_tx.clone();
        let generation = self.generation;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 9000];
            loop {
                match rx.recv(&mut buf).await {
                    Ok((n, info)) => {
                        let pkt = buf[..n.min(buf.len())].to_vec();
                        if pkt_tx.send((generation, idx, pkt, info)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("vrrp receive: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        let vips: Vec<Vip> = cfg
            .vips
            .iter()
            .chain(cfg.vips_excluded.iter())
            .map(|e| {
                let default_if = vmac.as_ref().map_or(&cfg.interface, |v| &v.0);
                let ifname = e.dev.clone().unwrap_or_else(|| default_if.clone());
                let ifindex = nix::net::if_::if_nametoindex(ifname.as_str()).unwrap_or(link.index);
                Vip {
                    addr: e.address.addr,
                    prefix_len: e.address.prefix_len,
                    ifindex,
                    ifname,
                    broadcast: config::broadcast(e),
                    scope: e.scope.as_deref().and_then(scope_number).unwrap_or(0),
                    label: e.label.clone(),
                    // keepalived adds IPv6 VIPs without duplicate address detection.
                    nodad: e.address.addr.is_ipv6(),
                }
            })
            .collect();
        let rules = cfg
            .rules
            .iter()
            .map(|r| Rule {
                v6: r
                    .from
                    .or(r.to)
                    .map_or(cfg.family == Family::V6, |p| p.addr.is_ipv6()),
                from: r.from.map(|p| (p.addr, p.prefix_len)),
                to: r.to.map(|p| (p.addr, p.prefix_len)),
                table: config::table_number(r.table.as_deref()),
                preference: r.preference,
            })
            .collect();
        let routes = cfg
            .routes
            .iter()
            .filter_map(|r| {
                let d = r.destination?;
                Some(Route {
                    dst: d.addr,
                    prefix_len: d.prefix_len,
                    via: r.via,
                    src: r.src,
                    oif: r
                        .dev
                        .as_deref()
                        .and_then(|n| nix::net::if_::if_nametoindex(n).ok()),
                    table: config::table_number(r.table.as_deref()),
                    metric: r.metric,
                    scope: r.scope.as_deref().and_then(scope_number),
                    kind: match r.route_type.as_deref() {
                        Some("blackhole") => 6,
                        Some("unreachable") => 7,
                        Some("prohibit") => 8,
                        _ => 1,
                    },
                })
            })
            .collect();
        let params = Params {
            version: cfg.version,
            base_priority: cfg.priority,
            adver_int_cs: if cfg.version == 2 {
                u32::from(cfg.adver_int) * 100
            } else {
                u32::from(cfg.adver_int)
            },
            preempt: cfg.preempt,
            preempt_delay_us: cfg.preempt_delay_us,
            down_timer_adverts: cfg.down_timer_adverts,
            own_addr: src,
            lower_prio_no_advert: cfg.lower_prio_no_advert,
        };
        Ok(Inst {
            advert_vips: cfg.vip_addrs(),
            old_checksum: cfg.old_unicast_checksum,
            sm: Instance::new(params),
            cfg,
            link,
            tx,
            src,
            vips,
            routes,
            rules,
            reader,
            garp: None,
            stats: RxStats::default(),
            tx_stats: TxStats::default(),
            vmac,
        })
    }

    /// use_vmac: a private macvlan with 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID for IPv6) on
    /// the interface, up, with keepalived's sysctls; a leftover of the same name is replaced.
    fn create_vmac(
        &mut self,
        cfg: &InstanceConfig,
        name: &str,
        base: u32,
    ) -> Result<(String, u32)> {
        let v6 = cfg.family == Family::V6;
        let mac = [0, 0, 0x5e, 0, if v6 { 2 } else { 1 }, cfg.vrid];
        if let Ok(old) = nix::net::if_::if_nametoindex(name) {
            let _ = self.nl.delete_link(old);
        }
        self.nl
            .create_macvlan(name, base, mac)
            .with_context(|| format!("({}) cannot create vmac {name}", cfg.name))?;
        let index = nix::net::if_::if_nametoindex(name)
            .with_context(|| format!("({}) vmac {name} vanished", cfg.name))?;
        for (ifname, key, value) in [
            (name, "arp_ignore", "1"),
            (name, "accept_local", "1"),
            (name, "rp_filter", "0"),
            (cfg.interface.as_str(), "arp_ignore", "1"),
            (cfg.interface.as_str(), "arp_filter", "1"),
        ] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"), value);
        }
        // No IPv6 link-local on the vmac (keepalived: addrgenmode none).
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode"), "1");
        self.nl
            .set_up(index)
            .with_context(|| format!("({}) cannot set {name} up", cfg.name))?;
        log::info!("({}) vmac {name} created", cfg.name);
        Ok((name.to_string(), index))
    }

    fn packet(&mut self, idx: usize, pkt: &[u8], info: Option<IpInfo>) {
        let now = self.now();
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let (ip, msg) = match info {
            Some(ip) => (ip, pkt),
            None => match codec::parse_ipv4(pkt) {
                Ok(x) => x,
                Err(err) => {
                    inst.stats.record::<()>(&Err(err));
                    log_drop(&inst.cfg.name, &inst.stats, &err);
                    return;
                }
            },
        };
        if ip.src == inst.src {
            return; // our own advert (unicast to ourselves or a looped multicast)
        }
        let exp = RxExpect {
            version: inst.cfg.version,
            family: inst.cfg.family,
            vrid: inst.cfg.vrid,
            adver_int: inst.cfg.adver_int,
            auth_pass: inst.cfg.auth_pass,
            unicast: inst.cfg.is_unicast(),
            vips: (!inst.cfg.skip_check_adv_addr).then_some(&inst.advert_vips[..]),
            v3_checksum_as_v2: inst.cfg.v3_checksum_as_v2,
            // keepalived detects the old checksum by itself in unicast mode.
            old_unicast_checksum: true,
        };
        let mut res = codec::check(msg, &ip, &exp);
        if let Ok(c) = &res
            && inst.cfg.is_unicast()
        {
            let peer = inst.cfg.unicast_peers.iter().find(|p| p.0 == ip.src);
            let ttl_ok = peer.is_none_or(|p| {
                p.1.is_none_or(|min| ip.ttl >= min) && p.2.is_none_or(|max| ip.ttl <= max)
            });
            if (inst.cfg.check_unicast_src && peer.is_none()) || !ttl_ok {
                res = Err(RxError::UnknownSource);
            } else if c.old_checksum && !inst.old_checksum {
                log::info!(
                    "({}) Setting unicast VRRPv3 checksum to old version",
                    inst.cfg.name
                );
                inst.old_checksum = true;
            }
        }
        inst.stats.record(&res);
        match res {
            Ok(c) => {
                if c.advert.priority == 0 {
                    inst.tx_stats.pri_zero_rcvd += 1;
                }
                let actions = inst.sm.on_advert(now, ip.src, &c.advert);
                self.apply(idx, actions, now);
            }
            Err(err) => log_drop(&inst.cfg.name, &inst.stats, &err),
        }
    }

    fn send_advert(&mut self, idx: usize, priority: u8) {
        let counters = &mut self.insts[idx].tx_stats;
        counters.adverts_sent += 1;
        if priority == 0 {
            counters.pri_zero_sent += 1;
        }
        let inst = &self.insts[idx];
        let adv = Advert {
            version: inst.cfg.version,
            vrid: inst.cfg.vrid,
            priority,
            adver_int: inst.cfg.adver_int,
            auth_type: if inst.cfg.auth_pass.is_some() {
                codec::AUTH_PASS
            } else {
                codec::AUTH_NONE
            },
            auth_data: inst.cfg.auth_pass.unwrap_or([0; 8]),
            addresses: inst.advert_vips.clone(),
        };
        let dsts: Vec<IpAddr> = if inst.cfg.is_unicast() {
            inst.cfg.unicast_peers.iter().map(|p| p.0).collect()
        } else {
            vec![group(inst.cfg.family == Family::V6)]
        };
        for dst in dsts {
            let csum = if inst.cfg.v3_checksum_as_v2 {
                Checksum::MessageOnly
            } else if inst.old_checksum && inst.cfg.is_unicast() && dst.is_ipv4() {
                Checksum::Pseudo {
                    src: inst.src,
                    dst: IpAddr::V4(MCAST_GROUP4),
                }
            } else {
                Checksum::Pseudo { src: inst.src, dst }
            };
            let msg = codec::encode(&adv, inst.cfg.family, csum);
            if let Err(e) = inst.tx.send(&msg, dst) {
                log::warn!("({}) cannot send advert to {dst}: {e}", inst.cfg.name);
            }
        }
    }

    fn apply(&mut self, idx: usize, actions: Vec<Action>, now: Micros) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => self.send_advert(idx, priority),
                Action::LowerPriorityMaster { from } => {
                    let inst = &self.insts[idx];
                    log::info!(
                        "({}) Received advert from {from} with lower priority, ours {}, forcing new election",
                        inst.cfg.name,
                        inst.sm.effective_priority()
                    );
                    if let Some(s) = &inst.cfg.notify.master_rx_lower_pri {
                        notify::spawn(s, &[]);
                    }
                    let g = inst.cfg.garp;
                    if g.lower_prio_repeat > 0 {
                        let targets = self.garp_targets(idx);
                        tokio::spawn(async move {
                            if g.lower_prio_delay > 0 {
                                tokio::time::sleep(Duration::from_secs(u64::from(
                                    g.lower_prio_delay,
                                )))
                                .await;
                            }
                            garp_burst(g.lower_prio_repeat, g.interval, &targets).await;
                        });
                    }
                }
                Action::Transition { from, to, reason } => {
                    self.transition(idx, from, to, reason);
                    // Sync group: the other members follow (not for shutdown/INIT).
                    if reason != Reason::SyncGroup
                        && to != State::Init
                        && let Some(g) = self.insts[idx].cfg.sync_group.clone()
                    {
                        for j in 0..self.insts.len() {
                            if j != idx && self.insts[j].cfg.sync_group.as_deref() == Some(&g) {
                                let acts = self.insts[j].sm.force(now, to);
                                self.apply(j, acts, now);
                            }
                        }
                    }
                    if reason != Reason::SyncGroup {
                        self.group_notify(idx);
                    }
                }
            }
        }
    }

    fn transition(&mut self, idx: usize, from: State, to: State, reason: Reason) {
        let name = self.insts[idx].cfg.name.clone();
        // keepalived 2.2.7's line, which people alert on; the reason is detail.
        if to == State::Init {
            // Stopping: keepalived 2.2.7 logs no transition for it.
            log::debug!("({name}) Entering {} STATE", to.keyword());
        } else {
            log::info!("({name}) Entering {} STATE", to.keyword());
        }
        log::debug!("({name}) transition reason: {reason:?}");
        if to == State::Master {
            self.insts[idx].tx_stats.became_master += 1;
        } else if from == State::Master {
            self.insts[idx].tx_stats.released_master += 1;
        }
        if to == State::Master {
            let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
            // no_accept: the drop rules go in before the addresses, so no packet slips through.
            let cfg = &self.insts[idx].cfg;
            if !cfg.accept && cfg.priority != 255 {
                let addrs: Vec<IpAddr> = v.iter().map(|x| x.addr).collect();
                noaccept::block(&name, &addrs);
            }
            log::info!("({name}) setting VIPs.");
            self.add_addresses(idx, &v, &r);
            self.start_garp(idx);
        } else if from == State::Master {
            if !self.insts[idx].cfg.accept {
                noaccept::unblock(&name);
            }
            if let Some(t) = self.insts[idx].garp.take() {
                t.abort();
            }
            log::info!("({name}) removing VIPs.");
            let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
            self.remove_addresses(&v, &r);
            let rules = self.insts[idx].rules.clone();
            self.remove_rules(&rules);
        }
        let inst = &self.insts[idx];
        let prio = inst.sm.effective_priority();
        let word = if to == State::Init {
            "STOP"
        } else {
            to.keyword()
        };
        let n = &inst.cfg.notify;
        let specific = match to {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Init => &n.stop,
        };
        if let Some(s) = specific {
            notify::spawn(s, &[]);
        }
        if let Some(s) = &n.notify {
            notify::spawn(
                s,
                &[
                    "INSTANCE".into(),
                    name.clone(),
                    word.into(),
                    prio.to_string(),
                ],
            );
        }
        for f in &mut self.fifos {
            f.write_line("INSTANCE", &name, word, prio);
        }
        let _ = self.events.try_send(StateEvent {
            instance: name,
            vrid: inst.cfg.vrid,
            interface: inst.cfg.interface.clone(),
            from,
            to,
            reason,
            vips: inst.vips.iter().map(|v| v.addr).collect(),
        });
    }

    /// A sync group goes MASTER only when no member still hears a master.
    fn group_holds_back(&self, idx: usize, now: Micros) -> bool {
        let Some(g) = self.insts[idx].cfg.sync_group.as_deref() else {
            return false;
        };
        self.insts.iter().enumerate().any(|(j, i)| {
            j != idx && i.cfg.sync_group.as_deref() == Some(g) && i.sm.hears_master(now)
        })
    }

    /// Once every member of the instance's sync group is in the same state, the group's
    /// notify scripts run (`notify` gets `GROUP NAME STATE 0`, as keepalived passes).
    fn group_notify(&mut self, idx: usize) {
        let Some(g) = self.insts[idx].cfg.sync_group.clone() else {
            return;
        };
        let mut states = self
            .insts
            .iter()
            .filter(|i| i.cfg.sync_group.as_deref() == Some(&g))
            .map(|i| i.sm.state());
        let Some(first) = states.next() else { return };
        if states.any(|s| s != first) || self.group_state.get(&g) == Some(&first) {
            return;
        }
        self.group_state.insert(g.clone(), first);
        let word = if first == State::Init {
            "STOP"
        } else {
            first.keyword()
        };
        if let Some(def) = self.config.sync_groups.iter().find(|s| s.name == g) {
            let n = &def.notify;
            let specific = match first {
                State::Master => &n.notify_master,
                State::Backup => &n.notify_backup,
                State::Fault => &n.notify_fault,
                State::Init => &n.notify_stop,
            };
            if let Some(s) = specific {
                notify::spawn(s, &[]);
            }
            if let Some(s) = &n.notify {
                notify::spawn(s, &["GROUP".into(), g.clone(), word.into(), "0".into()]);
            }
        }
        for f in &mut self.fifos {
            f.write_line("GROUP", &g, word, 0);
        }
    }

    fn add_addresses(&mut self, idx: usize, vips: &[Vip], routes: &[Route]) {
        let name = &self.insts[idx].cfg.name;
        for rule in &self.insts[idx].rules {
            if let Err(e) = self.nl.add_rule(rule) {
                log::warn!("({name}) cannot add rule: {e}");
            }
        }
        for vip in vips {
            if let Err(e) = self.nl.add_address(vip) {
                log::warn!("({name}) cannot add {}: {e}", vip.addr);
            }
        }
        for route in routes {
            if let Err(e) = self.nl.add_route(route) {
                log::warn!("({name}) cannot add route to {}: {e}", route.dst);
            }
        }
    }

    fn remove_rules(&mut self, rules: &[Rule]) {
        for rule in rules {
            let _ = self.nl.del_rule(rule);
        }
    }

    fn remove_addresses(&mut self, vips: &[Vip], routes: &[Route]) {
        for route in routes {
            let _ = self.nl.del_route(route);
        }
        for vip in vips {
            if let Err(e) = self.nl.del_address(vip) {
                log::warn!("cannot remove {}: {e}", vip.addr);
            }
        }
    }

    /// Interface index, MAC and address of every VIP, for GARPs / NAs.
    fn garp_targets(&self, idx: usize) -> Vec<(u32, [u8; 6], IpAddr)> {
        let inst = &self.insts[idx];
        inst.vips
            .iter()
            .map(|v| {
                let mac = if v.ifindex == inst.link.index {
                    inst.link.mac
                } else {
                    link::link(&v.ifname).map_or(inst.link.mac, |l| l.mac)
                };
                (v.ifindex, mac, v.addr)
            })
            .collect()
    }

    /// Gratuitous ARPs / NAs: a burst now, another after garp_master_delay, then refreshes.
    fn start_garp(&mut self, idx: usize) {
        let targets = self.garp_targets(idx);
        let inst = &mut self.insts[idx];
        let g = inst.cfg.garp;
        if let Some(t) = inst.garp.take() {
            t.abort();
        }
        inst.garp = Some(tokio::spawn(async move {
            garp_burst(g.master_repeat, g.interval, &targets).await;
            if g.master_delay > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(g.master_delay))).await;
                garp_burst(g.master_repeat, g.interval, &targets).await;
            }
            if g.master_refresh > 0 {
                loop {
                    tokio::time::sleep(Duration::from_secs(u64::from(g.master_refresh))).await;
                    garp_burst(g.master_refresh_repeat, g.interval, &targets).await;
                }
            }
        }));
    }

    fn retrack(&mut self) {
        let now = self.now();
        self.retrack_at(now, true);
    }

    /// Recomputes every instance's effective priority and fault from interfaces, scripts and
    /// files; `apply` feeds changes to the state machines.
    fn retrack_at(&mut self, now: Micros, apply: bool) {
        let cfg = self.config.clone();
        let Some(links) = link::states() else {
            log::warn!("cannot read interface states; tracking unchanged");
            return;
        };
        for idx in 0..self.insts.len() {
            let inst = &mut self.insts[idx];
            if let Some((up, mac)) = links.get(&inst.cfg.interface) {
                inst.link.up = *up;
                inst.link.mac = *mac;
            } else {
                inst.link.up = false;
            }
            let mut tracked = Vec::new();
            if !inst.cfg.dont_track_primary {
                tracked.push(Tracked {
                    weight: 0,
                    reverse: false,
                    kind: TrackKind::Up(inst.link.up),
                });
            }
            let group = inst
                .cfg
                .sync_group
                .as_deref()
                .and_then(|g| cfg.sync_groups.iter().find(|s| s.name == g));
            let ifaces = inst
                .cfg
                .track_interfaces
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_interfaces.iter()));
            for t in ifaces {
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(0),
                    reverse: t.reverse,
                    kind: TrackKind::Up(links.get(&t.name).is_some_and(|l| l.0)),
                });
            }
            let scripts = inst
                .cfg
                .track_scripts
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_scripts.iter()));
            for t in scripts {
                let Some(def) = cfg.vrrp_script(&t.name) else {
                    continue;
                };
                let ok = self.scripts.get(&t.name).is_none_or(|s| s.ok());
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(def.weight),
                    reverse: t.reverse || def.weight_reverse,
                    kind: TrackKind::Up(ok),
                });
            }
            let files = inst
                .cfg
                .track_files
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_files.iter()));
            for t in files {
                let Some(def) = cfg.track_files.iter().find(|f| f.name == t.name) else {
                    continue;
                };
                let value = def
                    .file
                    .as_deref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
                    .unwrap_or(0);
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(def.weight),
                    reverse: t.reverse || def.weight_reverse,
                    kind: TrackKind::File(value),
                });
            }
            let (prio, fault) = effective_priority(inst.cfg.priority, &tracked);
            if prio != inst.sm.effective_priority() || fault != (inst.sm.state() == State::Fault) {
                let actions = inst.sm.set_tracking(now, prio, fault);
                if apply {
                    self.apply(idx, actions, now);
                }
            }
        }
    }

    fn stop_tasks(&mut self) {
        for i in &mut self.insts {
            i.reader.abort();
            if let Some(g) = i.garp.take() {
                g.abort();
            }
        }
        for t in self.script_tasks.drain(..) {
            t.abort();
        }
    }

    fn shutdown(&mut self) {
        let now = self.now();
        log::info!("Stopping");
        for idx in 0..self.insts.len() {
            let actions = self.insts[idx].sm.shutdown(now);
            self.apply(idx, actions, now);
            let i = &self.insts[idx];
            log::info!("{}", counters_line(&i.cfg.name, &i.stats));
            if let Some((_, index)) = self.insts[idx].vmac.clone() {
                let _ = self.nl.delete_link(index);
            }
        }
        self.stop_tasks();
    }
}

/// `count` rounds of one GARP / NA per VIP, `interval` seconds apart.
async fn garp_burst(count: u32, interval: f64, targets: &[(u32, [u8; 6], IpAddr)]) {
    for n in 0..count {
        if n > 0 && interval > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(interval)).await;
        }
        for (ifindex, mac, addr) in targets {
            if let Err(e) = crate::garp::announce(*ifindex, *mac, *addr) {
                log::warn!("gratuitous ARP/NA for {addr}: {e}");
            }
        }
    }
}

/// Per-instance receive counters (for status output and tests).
pub fn counters_line(name: &str, s: &RxStats) -> String {
    let mut out = format!("{name}: accepted {}", s.accepted);
    for (n, c) in codec::RX_ERROR_NAMES.iter().zip(s.dropped.iter()) {
        if *c > 0 {
            out.push_str(&format!(" {n} {c}"));
        }
    }
    out
}
