//! The data plane the frames run through: a `TestBed` whose namespace's FIB resolves the reals
//! (so forwarded frames leave with XDP_TX), with one service per way a packet can go: NAT TCP
//! and UDP (IPv4 and IPv6), DR, FULLNAT, SYNPROXY, an IPIP tunnel, a persistent service and a
//! service without reals. Between inputs the connection table (and persistence templates) is
//! emptied, so an input does the same whatever ran before it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, Map, MapData};
use dataplane::fill::ConnFillMap;
use dataplane::model::*;
use ebpf_common::{Conn, FlowKey, Persist, PersistKey, maps as names};
use xlvs_tests::testbed::TestBed;

pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
pub const LADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 1);
const REAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

fn r4(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, net, host))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Nat,
    Dr,
    FullNat,
    Tunnel,
}

/// One service of the bed, as the oracle needs to know it.
pub struct Service {
    pub name: &'static str,
    pub proto: u8,
    pub vip: IpAddr,
    pub port: u16,
    pub forward: Method,
    pub reals: Vec<IpAddr>,
    pub synproxy: bool,
}

pub struct Bed {
    pub tb: TestBed,
    pub ifindex: u32,
    pub services: Vec<Service>,
    conns: HashMap<MapData, FlowKey, Conn>,
    persist: HashMap<MapData, PersistKey, Persist>,
    fill: ConnFillMap,
}

fn hash_map<K: aya::Pod, V: aya::Pod>(tb: &TestBed, name: &str) -> HashMap<MapData, K, V> {
    let data = MapData::from_pin(tb.opts.pin_dir.join(name)).expect("pinned map");
    HashMap::try_from(Map::LruHashMap(data)).expect("an LRU hash map")
}

impl Bed {
    /// Needs root; the calling thread enters the bed's namespace.
    pub fn load() -> Bed {
        let mut tb = TestBed::new(4096, true).expect("root: a data plane to run frames through");
        let ifindex = nix::net::if_::if_nametoindex("b0").expect("b0 in the bed's namespace");
        let vip4 = IpAddr::V4(VIP4);
        let vip6 = IpAddr::V6(VIP6);
        let services = vec![
            svc("nat tcp", 6, vip4, 80, Method::Nat, vec![r4(2, 2)]),
            svc("nat udp", 17, vip4, 53, Method::Nat, vec![r4(2, 3)]),
            svc("dr tcp", 6, vip4, 81, Method::Dr, vec![r4(2, 4)]),
            svc("fullnat tcp", 6, vip4, 82, Method::FullNat, vec![r4(3, 2)]),
            Service {
                synproxy: true,
                ..svc("synproxy tcp", 6, vip4, 83, Method::Nat, vec![r4(2, 5)])
            },
            svc("ipip tcp", 6, vip4, 84, Method::Tunnel, vec![r4(2, 2)]),
            svc(
                "persistent tcp",
                6,
                vip4,
                85,
                Method::Nat,
                vec![r4(2, 3), r4(2, 4)],
            ),
            svc("no reals tcp", 6, vip4, 86, Method::Nat, vec![]),
            svc(
                "nat tcp6",
                6,
                vip6,
                80,
                Method::Nat,
                vec![IpAddr::V6(REAL6)],
            ),
            svc(
                "nat udp6",
                17,
                vip6,
                53,
                Method::Nat,
                vec![IpAddr::V6(REAL6)],
            ),
        ];
        for s in &services {
            let addr = ServiceAddr::Inet {
                proto: Protocol::from_number(s.proto).expect("tcp or udp"),
                addr: s.vip,
                port: s.port,
            };
            let mut cfg = ServiceConfig::new(addr);
            cfg.scheduler = Scheduler::Rr;
            cfg.synproxy = s.synproxy;
            if s.name.starts_with("persistent") {
                cfg.persistent = Some(300);
            }
            tb.dp.add_service(&cfg).expect("service");
            for real in &s.reals {
                let port = match s.forward {
                    Method::Nat | Method::FullNat => 8080,
                    _ => s.port,
                };
                let mut d = DestConfig::new(*real, port);
                d.forward = match s.forward {
                    Method::Nat => Forward::Masq,
                    Method::Dr => Forward::Route,
                    Method::FullNat => Forward::FullNat,
                    Method::Tunnel => Forward::Tunnel,
                };
                tb.dp.add_dest(&addr, &d).expect("real");
            }
            if s.forward == Method::FullNat {
                let l = LocalAddr {
                    addr: IpAddr::V4(LADDR),
                    ifname: None,
                    conns: 0,
                    port_conflicts: 0,
                };
                tb.dp.add_laddr(&addr, &l).expect("local address");
            }
        }
        let conns = hash_map(&tb, names::CONNS);
        let persist = hash_map(&tb, names::PERSIST);
        let fill = ConnFillMap::open(&tb.opts.pin_dir).expect("CONN_FILL");
        Bed {
            tb,
            ifindex,
            services,
            conns,
            persist,
            fill,
        }
    }

    /// Empties the connection table and the persistence templates (the fill count with them).
    pub fn clear(&mut self) -> Result<(), String> {
        let keys: Vec<FlowKey> = self.conns.keys().filter_map(Result::ok).collect();
        for k in &keys {
            self.conns
                .remove(k)
                .map_err(|e| format!("remove a connection: {e}"))?;
        }
        self.fill.add(-(keys.len() as i64));
        let keys: Vec<PersistKey> = self.persist.keys().filter_map(Result::ok).collect();
        for k in &keys {
            self.persist
                .remove(k)
                .map_err(|e| format!("remove a template: {e}"))?;
        }
        Ok(())
    }

    pub fn has_conn(&self, key: &FlowKey) -> bool {
        self.conns.get(key, 0).is_ok()
    }

    /// Entries in the connection table, and what the fill count says.
    pub fn fill(&self) -> (u64, u64) {
        (self.conns.keys().count() as u64, self.fill.entries())
    }

    pub fn is_vip(&self, a: &IpAddr) -> bool {
        self.services.iter().any(|s| s.vip == *a)
    }

    fn is_real(&self, a: &IpAddr) -> bool {
        self.services.iter().any(|s| s.reals.contains(a))
    }

    /// Whether a packet between these addresses could match a service or a connection entry:
    /// to a VIP (client side), or from a real (replies; FULLNAT replies go to the local address).
    pub fn could_be_ours(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        self.is_vip(dst) || self.is_real(src)
    }

    pub fn service(&self, proto: u8, vip: &IpAddr, port: u16) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.proto == proto && s.vip == *vip && s.port == port)
    }

    /// The permanent neighbour entry the bed's namespace has for `a` (see `fib_namespace`).
    pub fn mac_of(&self, a: &IpAddr) -> Option<[u8; 6]> {
        match a {
            IpAddr::V4(v) => {
                let o = v.octets();
                Some([2, 0, 0, 0, o[2], o[3]])
            }
            IpAddr::V6(v) => Some([2, 0, 0, 6, v.segments()[2] as u8, 2]),
        }
    }
}

fn svc(
    name: &'static str,
    proto: u8,
    vip: IpAddr,
    port: u16,
    forward: Method,
    reals: Vec<IpAddr>,
) -> Service {
    Service {
        name,
        proto,
        vip,
        port,
        forward,
        reals,
        synproxy: false,
    }
}

/// The connection-table key of a packet, as the packet path builds it.
pub fn flow_key(src: &IpAddr, dst: &IpAddr, sport: u16, dport: u16, proto: u8) -> FlowKey {
    let words = |a: &IpAddr| -> [u32; 4] {
        match a {
            IpAddr::V4(v) => [u32::from_ne_bytes(v.octets()), 0, 0, 0],
            IpAddr::V6(v) => {
                let o = v.octets();
                std::array::from_fn(|i| {
                    u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
                })
            }
        }
    };
    FlowKey {
        src: words(src),
        dst: words(dst),
        sport: sport.to_be(),
        dport: dport.to_be(),
        proto,
        af: if src.is_ipv4() {
            ebpf_common::AF_INET
        } else {
            ebpf_common::AF_INET6
        },
        _pad: [0; 2],
    }
}
