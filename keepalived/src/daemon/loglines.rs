//! The log lines people grep and alert on, worded as keepalived 2.2.7 words them (recorded from
//! the real daemon: `keepalived/tests/golden/keepalived-2.2.7/`). Pure.
//!
//! * checker verdicts: `TCP connection to [198.18.2.3]:tcp:80 success.`,
//!   `TCP_CHECK on service [198.18.2.3]:tcp:80 failed.` (`… failed after 1 retries.`);
//! * real servers in and out: `Adding service [198.18.2.3]:tcp:80 to VS [198.18.100.1]:tcp:80`,
//!   `Removing service … from VS …`, and on stop `Shutting down service … from VS …`;
//! * VRRP transitions (`(VI_1) Entering MASTER STATE`) are the `vrrp` crate's.

use dataplane::model::{Family, Protocol, ServiceAddr};
use healthcheck::{RealEvent, RealKey, VsKey};
use std::net::IpAddr;

fn proto_lc(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// keepalived's FMT_VS: `[198.18.100.1]:tcp:80`, `FWM 1`.
pub fn vs(addr: &ServiceAddr) -> String {
    match addr {
        ServiceAddr::Inet { proto, addr, port } => {
            format!("[{addr}]:{}:{port}", proto_lc(*proto))
        }
        ServiceAddr::Fwmark { mark, family } => match family {
            Family::V4 => format!("FWM {mark}"),
            Family::V6 => format!("FWM {mark} IPv6"),
        },
    }
}

/// keepalived's FMT_RS: the real's address with its virtual server's protocol
/// (`[198.18.2.3]:tcp:80`; fwmark services' reals are shown as TCP, as keepalived does).
pub fn rs(service: &ServiceAddr, addr: &IpAddr, port: u16) -> String {
    let proto = match service {
        ServiceAddr::Inet { proto, .. } => *proto,
        ServiceAddr::Fwmark { .. } => Protocol::Tcp,
    };
    format!("[{addr}]:{}:{port}", proto_lc(proto))
}

pub fn adding_real(service: &ServiceAddr, addr: &IpAddr, port: u16) -> String {
    format!(
        "Adding service {} to VS {}",
        rs(service, addr, port),
        vs(service)
    )
}

pub fn removing_real(service: &ServiceAddr, addr: &IpAddr, port: u16) -> String {
    format!(
        "Removing service {} from VS {}",
        rs(service, addr, port),
        vs(service)
    )
}

pub fn shutting_down_real(vs: &VsKey, real: &RealKey) -> String {
    let service = format!("[{}]:{}:{}", real.addr, vs.protocol_lc(), real.port);
    format!("Shutting down service {service} from VS {vs}")
}

/// The line a checker's verdict is logged with. Successes are the probe's own words; a
/// TCP_CHECK failure is reported per service, with the retries it took.
pub fn checker_verdict(ev: &RealEvent) -> String {
    if ev.up || ev.checker != "TCP_CHECK" {
        return ev.reason.clone();
    }
    let service = format!(
        "[{}]:{}:{}",
        ev.real.addr,
        ev.vs.protocol_lc(),
        ev.real.port
    );
    match ev.retries {
        0 => format!("TCP_CHECK on service {service} failed."),
        n => format!("TCP_CHECK on service {service} failed after {n} retries."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> ServiceAddr {
        ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: "198.18.100.1".parse().unwrap(),
            port: 80,
        }
    }

    /// Lines of keepalived 2.2.7's checker scenario (golden checker-syslog.txt).
    #[test]
    fn real_server_lines_are_keepalived_2_2_7s() {
        let real: IpAddr = "198.18.2.3".parse().unwrap();
        assert_eq!(
            adding_real(&svc(), &real, 80),
            "Adding service [198.18.2.3]:tcp:80 to VS [198.18.100.1]:tcp:80"
        );
        assert_eq!(
            removing_real(&svc(), &real, 80),
            "Removing service [198.18.2.3]:tcp:80 from VS [198.18.100.1]:tcp:80"
        );

        let fw = ServiceAddr::Fwmark {
            mark: 7,
            family: Family::V4,
        };
        assert_eq!(vs(&fw), "FWM 7");
    }

    #[test]
    fn tcp_check_failures_name_the_service_and_retries() {
        let conf = keepalived_conf::parse_str(
            "virtual_server 198.18.100.1 80 { protocol TCP\n real_server 198.18.2.2 80 { TCP_CHECK { } } }\n",
            "t.conf",
            &Default::default(),
        )
        .config;
        let vs = &conf.virtual_servers[0];
        let mut ev = RealEvent {
            vs: VsKey::of(vs),
            real: RealKey::of(&vs.real_servers[0]),
            up: false,
            weight: 1,
            transition: true,
            reason: "TCP connection to [198.18.2.2]:tcp:80 failed (refused).".into(),
            checker: "TCP_CHECK",
            retries: 1,
            first: false,
        };
        assert_eq!(
            checker_verdict(&ev),
            "TCP_CHECK on service [198.18.2.2]:tcp:80 failed after 1 retries."
        );
        ev.retries = 0;
        assert_eq!(
            checker_verdict(&ev),
            "TCP_CHECK on service [198.18.2.2]:tcp:80 failed."
        );
        ev.up = true;
        ev.reason = "TCP connection to [198.18.2.2]:tcp:80 success.".into();
        assert_eq!(checker_verdict(&ev), ev.reason);
        assert_eq!(
            shutting_down_real(&ev.vs, &ev.real),
            "Shutting down service [198.18.2.2]:tcp:80 from VS [198.18.100.1]:tcp:80"
        );
    }
}
