//! `xlvs metrics --listen ADDR:PORT`: a Prometheus endpoint (`/metrics`, OpenMetrics text).
//!
//! * node_exporter's IPVS collector, names, labels and semantics kept, so IPVS dashboards work
//!   unchanged: `node_ipvs_{connections,incoming_packets,outgoing_packets,incoming_bytes,
//!   outgoing_bytes}_total` (the kernel's totals of /proc/net/ip_vs_stats; here the sum over the
//!   services that exist) and `node_ipvs_backend_{connections_active,connections_inactive,
//!   weight}` labelled `local_address`, `local_port`, `remote_address`, `remote_port`, `proto`,
//!   `local_mark` as node_exporter labels /proc/net/ip_vs lines: `proto` TCP/UDP (FWM for
//!   fwmark services, whose `local_mark` is the mark as 8 upper-case hex digits and whose
//!   `local_address` is empty and `local_port` 0), and series with the same labels summed.
//!   IPv6 services are exported too (node_exporter fails on /proc/net/ip_vs's IPv6 lines).
//! * `xlvs_*`: every data-path counter, table fill levels, each program's verified
//!   instructions, attachments and timers, FULLNAT local addresses, SYNPROXY services, the
//!   firewall's rate limits' drops;
//! * `xlvs_keepalived_*` from keepalived's published state (`runstate`): VRRP state, priority,
//!   transitions, reals' checker verdicts and probe latency, quorum;
//! * `xlvs_bridge_*` from the route-announcement bridge's published state, when it runs.
//!
//! It also serves the firewall's HTTP API (`/fw`, `/fw/rules`: `fw_api`).

use crate::{fw_api, report};
use anyhow::{Context, Result};
use dataplane::model::{ServiceAddr, ServiceEntry};
use dataplane::{Dataplane, Options};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until killed. Binding is checked before anything else: a taken or invalid address
/// is one clear error.
pub fn serve(opts: &Options, listen: SocketAddr) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("metrics: cannot listen on {listen}"))?;
        eprintln!("xlvs: metrics on http://{listen}/metrics, firewall API on http://{listen}/fw");
        let state = Arc::new(Scraper {
            opts: opts.clone(),
            dp: Mutex::new(None),
        });
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("metrics: accept: {e}");
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move {
                        let resp = if fw_api::serves(req.uri().path()) {
                            fw_api::answer(state.opts.clone(), req).await
                        } else {
                            state.answer(&req)
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    })
}

struct Scraper {
    opts: Options,
    /// Opened on the first scrape that finds the data plane loaded; dropped on an error (the
    /// tables may have been unloaded and loaded again).
    dp: Mutex<Option<Dataplane>>,
}

impl Scraper {
    fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let reply = |code, ty: &str, body: String| {
            Response::builder()
                .status(code)
                .header("content-type", ty)
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        };
        match req.uri().path() {
            "/metrics" => match self.scrape() {
                Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e:#}\n"),
                ),
            },
            "/" => reply(
                StatusCode::OK,
                "text/html",
                "<a href=\"/metrics\">metrics</a> <a href=\"/fw\">firewall</a>\n".into(),
            ),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        }
    }

    fn scrape(&self) -> Result<String> {
        let mut guard = self.dp.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() || !dataplane::loader::is_loaded(&self.opts.pin_dir) {
            *guard = report::open_if_loaded(&self.opts)?;
        }
        let mut reg = Registry::default();
        let result = collect(&mut reg, &self.opts, guard.as_mut());
        if result.is_err() {
            *guard = None;
        }
        result?;
        fw_limits(&mut reg, &self.opts);
        keepalived(&mut reg, &self.opts);
        bridge(&mut reg, &self.opts);
        let mut out = String::new();
        encode(&mut out, &reg)?;
        Ok(out)
    }
}

/// Packets each firewall rate limit dropped (`xlvs fw icmp-limit`, `xlvs fw conn-limit`),
/// read from the data plane's maps while it is loaded.
fn fw_limits(reg: &mut Registry, opts: &Options) {
    if !dataplane::loader::is_loaded(&opts.pin_dir) {
        return;
    }
    let Ok(fw) = dataplane::fw::Firewall::open(opts) else {
        return;
    };
    let (icmp, conn) = fw.limit_drops();
    let dropped: Family<Labels, Counter> = Family::default();
    if let Some(n) = icmp {
        dropped
            .get_or_create(&labels(&[("limit", "icmp".into())]))
            .inc_by(n);
    }
    for (vip, n) in conn {
        dropped
            .get_or_create(&labels(&[
                ("limit", "conn".into()),
                ("vip", vip.to_string()),
            ]))
            .inc_by(n);
    }
    reg.register(
        "xlvs_fw_limit_dropped",
        "Packets dropped over a firewall rate limit: the ICMP limit (limit=\"icmp\") or a VIP's per-source connection budget (limit=\"conn\")",
        dropped,
    );
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    reg.register(name, help, g);
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// node_exporter's backend labels for a real of a service.
fn backend_labels(s: &ServiceAddr, real: &std::net::IpAddr, real_port: u16) -> Labels {
    let (local_address, local_port, proto, mark) = match s {
        ServiceAddr::Inet { proto, addr, port } => (
            addr.to_string(),
            *port,
            proto.name().to_string(),
            String::new(),
        ),
        ServiceAddr::Fwmark { mark, .. } => {
            (String::new(), 0, "FWM".to_string(), format!("{mark:08X}"))
        }
    };
    labels(&[
        ("local_address", local_address),
        ("local_port", local_port.to_string()),
        ("remote_address", real.to_string()),
        ("remote_port", real_port.to_string()),
        ("proto", proto),
        ("local_mark", mark),
    ])
}

/// The service as a label value: `TCP 198.18.100.1:80`, `FWM 1`.
fn service_label(s: &ServiceAddr) -> String {
    s.to_string()
}

fn collect(reg: &mut Registry, opts: &Options, dp: Option<&mut Dataplane>) -> Result<()> {
    let loaded = dp.is_some();
    gauge(
        reg,
        "xlvs_loaded",
        "1 when the data plane (program and tables) is loaded",
        i64::from(loaded),
    );
    let Some(dp) = dp else { return Ok(()) };
    let services = dp.services().context("reading the services")?;
    ipvs(reg, &services);
    let status = report::status(opts, Some(dp))?;
    gauge(
        reg,
        "xlvs_timers_running",
        "1 when a process runs IPVS' timers (connection expiry, connection counts)",
        i64::from(status.timers_running),
    );
    let attached: Family<Labels, Gauge> = Family::default();
    for i in &status.interfaces {
        attached
            .get_or_create(&labels(&[("interface", i.clone())]))
            .set(1);
    }
    reg.register(
        "xlvs_interface_attached",
        "Interfaces the XDP program is attached to",
        attached,
    );
    gauge(
        reg,
        "xlvs_attached_interfaces",
        "Number of interfaces the XDP program is attached to (0 with services: nothing is balanced)",
        status.interfaces.len() as i64,
    );
    let events: Family<Labels, Counter> = Family::default();
    for (name, v) in &status.counters {
        events
            .get_or_create(&labels(&[("counter", name.to_string())]))
            .inc_by(*v);
    }
    reg.register(
        "xlvs_datapath",
        "Data-path counters: drops (drop_*), packets passed to the kernel (pass_*) and events, as `xlvs status` lists them",
        events,
    );
    let used: Family<Labels, Gauge> = Family::default();
    let cap: Family<Labels, Gauge> = Family::default();
    for (t, f) in &status.tables {
        let l = labels(&[("table", t.to_string())]);
        used.get_or_create(&l).set(i64::from(f.used));
        cap.get_or_create(&l).set(i64::from(f.capacity));
    }
    reg.register("xlvs_table_entries", "Entries in use per table", used);
    reg.register("xlvs_table_capacity", "Capacity per table", cap);
    let insns: Family<Labels, Gauge> = Family::default();
    let jited: Family<Labels, Gauge> = Family::default();
    for p in &status.programs {
        let l = labels(&[("program", p.name.clone())]);
        insns
            .get_or_create(&l)
            .set(i64::from(p.verified_insns.unwrap_or(0)));
        jited.get_or_create(&l).set(i64::from(p.jited_bytes));
    }
    reg.register(
        "xlvs_program_verified_instructions",
        "Instructions the verifier processed per BPF program (its limit is 1 000 000)",
        insns,
    );
    reg.register(
        "xlvs_program_jited_bytes",
        "JIT-compiled size per BPF program",
        jited,
    );
    fullnat_and_synproxy(reg, &services);
    Ok(())
}

/// node_exporter's IPVS series.
fn ipvs(reg: &mut Registry, services: &[ServiceEntry]) {
    let mut total = dataplane::model::Stats::default();
    for s in services {
        total.conns += s.stats.conns;
        total.inpkts += s.stats.inpkts;
        total.outpkts += s.stats.outpkts;
        total.inbytes += s.stats.inbytes;
        total.outbytes += s.stats.outbytes;
    }
    counter(
        reg,
        "node_ipvs_connections",
        "The total number of connections made.",
        total.conns,
    );
    counter(
        reg,
        "node_ipvs_incoming_packets",
        "The total number of incoming packets.",
        total.inpkts,
    );
    counter(
        reg,
        "node_ipvs_outgoing_packets",
        "The total number of outgoing packets.",
        total.outpkts,
    );
    counter(
        reg,
        "node_ipvs_incoming_bytes",
        "The total amount of incoming data.",
        total.inbytes,
    );
    counter(
        reg,
        "node_ipvs_outgoing_bytes",
        "The total amount of outgoing data.",
        total.outbytes,
    );
    // node_exporter sums backends whose labels are equal.
    let mut sums: BTreeMap<Labels, (u64, u64, i64)> = BTreeMap::new();
    for s in services {
        for d in &s.dests {
            let e = sums
                .entry(backend_labels(
                    &s.config.addr,
                    &d.config.addr,
                    d.config.port,
                ))
                .or_default();
            e.0 += u64::from(d.active_conns);
            e.1 += u64::from(d.inact_conns);
            e.2 += i64::from(d.config.weight);
        }
    }
    let active: Family<Labels, Gauge> = Family::default();
    let inactive: Family<Labels, Gauge> = Family::default();
    let weight: Family<Labels, Gauge> = Family::default();
    for (l, (a, i, w)) in &sums {
        active.get_or_create(l).set(*a as i64);
        inactive.get_or_create(l).set(*i as i64);
        weight.get_or_create(l).set(*w);
    }
    reg.register(
        "node_ipvs_backend_connections_active",
        "The current active connections by local and remote address.",
        active,
    );
    reg.register(
        "node_ipvs_backend_connections_inactive",
        "The current inactive connections by local and remote address.",
        inactive,
    );
    reg.register(
        "node_ipvs_backend_weight",
        "The current backend weight by local and remote address.",
        weight,
    );
}

/// FULLNAT local-address pools and SYNPROXY services.
fn fullnat_and_synproxy(reg: &mut Registry, services: &[ServiceEntry]) {
    let conns: Family<Labels, Gauge> = Family::default();
    let conflicts: Family<Labels, Counter> = Family::default();
    let synproxy: Family<Labels, Gauge> = Family::default();
    for s in services {
        let svc = service_label(&s.config.addr);
        for l in &s.local_addrs {
            let lab = labels(&[
                ("service", svc.clone()),
                ("local_address", l.addr.to_string()),
            ]);
            conns.get_or_create(&lab).set(l.conns as i64);
            conflicts.get_or_create(&lab).inc_by(l.port_conflicts);
        }
        if s.config.synproxy {
            synproxy.get_or_create(&labels(&[("service", svc)])).set(1);
        }
    }
    reg.register(
        "xlvs_fullnat_local_address_connections",
        "Connections using each FULLNAT local address (ipvsadm -G)",
        conns,
    );
    reg.register(
        "xlvs_fullnat_local_address_port_conflicts",
        "Source ports found taken while allocating on each FULLNAT local address",
        conflicts,
    );
    reg.register(
        "xlvs_synproxy_service",
        "Services with SYNPROXY on (their handshakes are counted in xlvs_datapath{counter=~\"synproxy_.*\"})",
        synproxy,
    );
}

/// keepalived's live state, when a keepalived runs and publishes it.
fn keepalived(reg: &mut Registry, opts: &Options) {
    let state: Option<runstate::Keepalived> =
        runstate::read_live(&runstate::dir(&opts.pin_dir), runstate::KEEPALIVED_FILE);
    gauge(
        reg,
        "xlvs_keepalived_up",
        "1 when keepalived runs and publishes its state",
        i64::from(state.is_some()),
    );
    let Some(k) = state else { return };
    let vrrp_state: Family<Labels, Gauge> = Family::default();
    let prio: Family<Labels, Gauge> = Family::default();
    let eff: Family<Labels, Gauge> = Family::default();
    let transitions: Family<Labels, Counter> = Family::default();
    let became: Family<Labels, Counter> = Family::default();
    let sent: Family<Labels, Counter> = Family::default();
    let received: Family<Labels, Counter> = Family::default();
    for v in &k.vrrp {
        let base = [
            ("instance", v.name.clone()),
            ("vrid", v.vrid.to_string()),
            ("interface", v.interface.clone()),
        ];
        for st in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let mut l = labels(&base);
            l.push(("state".into(), st.into()));
            vrrp_state.get_or_create(&l).set(i64::from(v.state == st));
        }
        let l = labels(&base);
        prio.get_or_create(&l).set(i64::from(v.base_priority));
        eff.get_or_create(&l).set(i64::from(v.effective_priority));
        transitions.get_or_create(&l).inc_by(v.transitions);
        became.get_or_create(&l).inc_by(v.became_master);
        sent.get_or_create(&l).inc_by(v.adverts_sent);
        received.get_or_create(&l).inc_by(v.adverts_received);
    }
    reg.register(
        "xlvs_keepalived_vrrp_state",
        "1 for the state each VRRP instance is in",
        vrrp_state,
    );
    reg.register(
        "xlvs_keepalived_vrrp_priority",
        "Configured VRRP priority",
        prio,
    );
    reg.register(
        "xlvs_keepalived_vrrp_effective_priority",
        "VRRP priority after tracking",
        eff,
    );
    reg.register(
        "xlvs_keepalived_vrrp_transitions",
        "VRRP state changes since keepalived started",
        transitions,
    );
    reg.register(
        "xlvs_keepalived_vrrp_became_master",
        "Transitions to MASTER",
        became,
    );
    reg.register(
        "xlvs_keepalived_vrrp_adverts_sent",
        "VRRP adverts sent",
        sent,
    );
    reg.register(
        "xlvs_keepalived_vrrp_adverts_received",
        "VRRP adverts received and accepted",
        received,
    );
    let quorum: Family<Labels, Gauge> = Family::default();
    let up: Family<Labels, Gauge> = Family::default();
    let weight: Family<Labels, Gauge> = Family::default();
    let ok: Family<Labels, Gauge> = Family::default();
    let latency: Family<Labels, GaugeF> = Family::default();
    for vs in &k.virtual_servers {
        quorum
            .get_or_create(&labels(&[("virtual_server", vs.name.clone())]))
            .set(i64::from(vs.quorum_up));
        for r in &vs.reals {
            let l = labels(&[
                ("virtual_server", vs.name.clone()),
                ("address", r.address.clone()),
                ("port", r.port.to_string()),
            ]);
            up.get_or_create(&l).set(i64::from(r.up));
            weight.get_or_create(&l).set(i64::from(r.weight));
            if let (Some(c), Some(good), Some(secs)) =
                (&r.last_checker, r.last_check_ok, r.last_check_seconds)
            {
                let mut lc = l.clone();
                lc.push(("checker".into(), c.clone()));
                ok.get_or_create(&lc).set(i64::from(good));
                latency.get_or_create(&lc).set(secs);
            }
        }
    }
    reg.register(
        "xlvs_keepalived_quorum_up",
        "1 while a virtual server has quorum",
        quorum,
    );
    reg.register(
        "xlvs_keepalived_real_up",
        "1 while every checker of a real server says up",
        up,
    );
    reg.register(
        "xlvs_keepalived_real_weight",
        "The weight keepalived gives a real server",
        weight,
    );
    reg.register(
        "xlvs_keepalived_check_success",
        "1 when a real server's last probe succeeded",
        ok,
    );
    reg.register(
        "xlvs_keepalived_check_latency_seconds",
        "How long a real server's last probe took",
        latency,
    );
}

/// The route-announcement bridge's state, when it runs.
fn bridge(reg: &mut Registry, opts: &Options) {
    let Some(b): Option<runstate::Bridge> =
        runstate::read_live(&runstate::dir(&opts.pin_dir), runstate::BRIDGE_FILE)
    else {
        return;
    };
    let announced: Family<Labels, Gauge> = Family::default();
    let changes: Family<Labels, Counter> = Family::default();
    for a in &b.announcements {
        let l = labels(&[("prefix", a.prefix.clone()), ("via", a.via.clone())]);
        announced.get_or_create(&l).set(i64::from(a.announced));
        changes.get_or_create(&l).inc_by(a.changes);
    }
    reg.register(
        "xlvs_bridge_announced",
        "1 while the route bridge announces a VIP prefix",
        announced,
    );
    reg.register(
        "xlvs_bridge_changes",
        "Announce/withdraw changes per prefix",
        changes,
    );
}
