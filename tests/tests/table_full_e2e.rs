//! A full connection table under real TCP, in network namespaces: more keep-alive connections
//! than the table holds. With `evict` (the default) every new connection gets in and every
//! evicted one is reset on its next segment, never left hanging; with `refuse` the connections
//! that did not fit were refused and every established one keeps working. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Result, ensure};
use dataplane::Dataplane;
use dataplane::fill::TableFull;
use xlvs_tests::lab::{Lab, VIP};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

const PORT: u16 = 80;
/// Connections the table is made for.
const CAPACITY: u32 = 100;
/// Connections opened with `evict`: well beyond the capacity and the LRU's headroom.
const OPENED: usize = 1500;
/// With `refuse`: what the table holds and some more (each refused one waits for its connect
/// timeout). The table has room for two entries per connection; these NAT connections take one
/// each (the service owns its reals), so it holds up to twice the capacity.
const OPENED_REFUSE: usize = 2 * CAPACITY as usize + 40;

/// What became of one connection when it was used again.
#[derive(Debug, PartialEq)]
enum Fate {
    Answered,
    Reset,
    /// No answer and no RST within the deadline: what an operator must never see.
    Hung,
    NeverOpened,
}

fn raise_fd_limit() {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        hard.min(16384),
        hard,
    );
}

fn lab(policy: TableFull) -> Result<(Lab, Dataplane, Vec<servers::Server>)> {
    let lab = Lab::with_max_conns(2, CAPACITY)?;
    let (mut dp, srv) = lab.tcp_nat_service(PORT)?;
    let mut s = dp.path_settings()?;
    s.table_full = policy;
    dp.set_path_settings(&s)?;
    Ok((lab, dp, srv))
}

/// Opens `n` keep-alive connections (greeting read), waits for the timers to look at the
/// table, then sends a line on each and records what happened.
fn open_then_use(lab: &Lab, n: usize) -> Result<Vec<Fate>> {
    let h = lab.client.run_in(move || -> Result<Vec<Fate>> {
        let mut conns = Vec::new();
        for _ in 0..n {
            let c = TcpStream::connect_timeout(
                &SocketAddr::new(IpAddr::V4(VIP), PORT),
                Duration::from_millis(300),
            )
            .and_then(|s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut greeting = String::new();
                BufReader::new(s.try_clone()?).read_line(&mut greeting)?;
                Ok((s, greeting.trim().to_string()))
            });
            conns.push(c.ok());
        }
        // The timers look at the table every 2 s (evictions counted, orphans marked).
        std::thread::sleep(Duration::from_millis(4500));
        let mut fates = Vec::new();
        for c in conns {
            let Some((mut s, name)) = c else {
                fates.push(Fate::NeverOpened);
                continue;
            };
            let fate = match writeln!(s, "again") {
                Err(_) => Fate::Reset,
                Ok(()) => {
                    let mut echo = String::new();
                    match BufReader::new(&s).read_line(&mut echo) {
                        Ok(_) if echo.trim() == format!("{name} again") => Fate::Answered,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Fate::Reset,
                        Ok(0) => Fate::Reset,
                        _ => Fate::Hung,
                    }
                }
            };
            fates.push(fate);
        }
        Ok(fates)
    });
    h.join().map_err(|_| anyhow::anyhow!("client panicked"))??
}

fn count(fates: &[Fate], f: Fate) -> usize {
    fates.iter().filter(|x| **x == f).count()
}

#[test]
fn evicted_connections_are_reset_not_left_hanging() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    raise_fd_limit();
    let (lab, dp, _srv) = lab(TableFull::Evict)?;
    let fates = open_then_use(&lab, OPENED)?;
    let (answered, reset, hung, never) = (
        count(&fates, Fate::Answered),
        count(&fates, Fate::Reset),
        count(&fates, Fate::Hung),
        count(&fates, Fate::NeverOpened),
    );
    eprintln!("evict: {answered} answered, {reset} reset, {hung} hung, {never} never opened");
    ensure!(
        never == 0,
        "evict admits every new connection: {never} did not open"
    );
    ensure!(hung == 0, "{hung} evicted connections were left hanging");
    ensure!(
        reset > 0 && answered > 0,
        "{answered} answered, {reset} reset"
    );
    let f = dp.fill()?;
    ensure!(f.conn_evicted > 0, "evictions are counted: {f:?}");
    Ok(())
}

#[test]
fn the_refuse_policy_keeps_every_established_connection() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    raise_fd_limit();
    let (lab, dp, _srv) = lab(TableFull::Refuse)?;
    let fates = open_then_use(&lab, OPENED_REFUSE)?;
    let (answered, never) = (
        count(&fates, Fate::Answered),
        count(&fates, Fate::NeverOpened),
    );
    eprintln!("refuse: {answered} answered, {never} refused");
    ensure!(
        answered + never == OPENED_REFUSE,
        "every connection that opened still works: {fates:?}"
    );
    ensure!(
        answered >= CAPACITY as usize && never > 0,
        "{answered} answered, {never} refused"
    );
    let f = dp.fill()?;
    ensure!(f.conn_evicted == 0, "nothing evicted: {f:?}");
    let c = dp.counters()?;
    ensure!(c[ebpf_common::counter::DROP_TABLE_FULL as usize] > 0);
    Ok(())
}
