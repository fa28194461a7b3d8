//! `xlvs metrics` scraped by a real Prometheus (Debian's 2.42): after traffic through a NAT
//! VIP, PromQL over node_exporter's IPVS series gives what `ipvsadm -Ln --stats --exact` and
//! `ipvsadm -Ln` show (totals, per-backend weights and active connections), and the xlvs_*
//! series are there. Needs root and /usr/bin/prometheus.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xlvs_tests::keepalived::{Workdir, ipvsadm};
use xlvs_tests::lab::{Lab, VIP, binary};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The value of a PromQL query returning one sample, or every sample by `label`.
fn query(port: u16, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>> {
    let out = Command::new("curl")
        .args(["-s", "-G", "--data-urlencode"])
        .arg(format!("query={q}"))
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
    ensure!(v["status"] == "success", "{q}: {v}");
    let mut res = Vec::new();
    for r in v["data"]["result"].as_array().context("result")? {
        let labels = r["metric"]
            .as_object()
            .context("metric")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let value: f64 = r["value"][1].as_str().context("value")?.parse()?;
        res.push((labels, value));
    }
    Ok(res)
}

fn scalar(port: u16, q: &str) -> Result<f64> {
    let r = query(port, q)?;
    ensure!(r.len() == 1, "{q}: {r:?}");
    Ok(r[0].1)
}

/// `ipvsadm -Ln --stats --exact` service lines summed: conns, inpkts, outpkts, inbytes, outbytes.
fn ipvsadm_totals(lab: &Lab) -> Result<[u64; 5]> {
    let text = ipvsadm(lab, &["-Ln", "--stats", "--exact"])?;
    let mut t = [0u64; 5];
    for l in text
        .lines()
        .filter(|l| l.starts_with("TCP ") || l.starts_with("UDP "))
    {
        let f: Vec<&str> = l.split_whitespace().collect();
        for (i, x) in f[2..7].iter().enumerate() {
            t[i] += x.parse::<u64>()?;
        }
    }
    Ok(t)
}

#[test]
fn prometheus_sees_what_ipvsadm_shows() -> Result<()> {
    if !is_root() || !Path::new(PROMETHEUS).exists() {
        xlvs_tests::skip(&format!("needs root and {PROMETHEUS}"));
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let _srv = lab.tcp_servers(80)?;
    let (r0, r1) = (lab.real_ip(0), lab.real_ip(1));
    ipvsadm(&lab, &["-A", "-t", &format!("{VIP}:80"), "-s", "wrr"])?;
    ipvsadm(
        &lab,
        &[
            "-a",
            "-t",
            &format!("{VIP}:80"),
            "-r",
            &format!("{r0}:80"),
            "-m",
            "-w",
            "3",
        ],
    )?;
    ipvsadm(
        &lab,
        &[
            "-a",
            "-t",
            &format!("{VIP}:80"),
            "-r",
            &format!("{r1}:80"),
            "-m",
            "-w",
            "1",
        ],
    )?;

    // 12 short connections, and 2 that stay open (ActiveConn).
    let open = lab.client.run_in(|| -> Result<Vec<TcpStream>> {
        let vip = SocketAddr::new(IpAddr::V4(VIP), 80);
        for _ in 0..12 {
            servers::exchange(vip)?;
        }
        (0..2).map(|_| Ok(servers::exchange(vip)?.1)).collect()
    });
    let _open = open
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;

    let dir = Workdir::new(&lab.prefix)?;
    let (mport, pport) = (free_port()?, free_port()?);
    let mlog = std::fs::File::create(dir.path("metrics.log"))?;
    let _metrics = Killed(
        Command::new(binary("xlvs")?)
            .arg("--pin-dir")
            .arg(&lab.opts.pin_dir)
            .args(["metrics", "--listen", &format!("127.0.0.1:{mport}")])
            .env("XLVS_RUN_DIR", dir.path("run"))
            .stdin(Stdio::null())
            .stdout(mlog.try_clone()?)
            .stderr(mlog)
            .spawn()?,
    );
    std::fs::write(
        dir.path("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: xlvs\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )?;
    let plog = std::fs::File::create(dir.path("prometheus.log"))?;
    let _prom = Killed(
        Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.path("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdin(Stdio::null())
            .stdout(plog.try_clone()?)
            .stderr(plog)
            .spawn()?,
    );
    // Two scrapes after everything settled.
    let t0 = Instant::now();
    loop {
        if let Ok(r) = query(pport, "count_over_time(up{job=\"xlvs\"}[1m])")
            && r.first().is_some_and(|(_, n)| *n >= 2.0)
            && scalar(pport, "up{job=\"xlvs\"}").unwrap_or(0.0) == 1.0
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(40) {
            bail!(
                "no scrapes: {}\n{}",
                std::fs::read_to_string(dir.path("prometheus.log")).unwrap_or_default(),
                std::fs::read_to_string(dir.path("metrics.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(1200));

    let totals = ipvsadm_totals(&lab)?;
    assert_eq!(totals[0], 14, "ipvsadm counted the connections");
    for (i, name) in [
        "node_ipvs_connections_total",
        "node_ipvs_incoming_packets_total",
        "node_ipvs_outgoing_packets_total",
        "node_ipvs_incoming_bytes_total",
        "node_ipvs_outgoing_bytes_total",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(scalar(pport, name)? as u64, totals[i], "{name}");
    }
    let listing = ipvsadm(&lab, &["-Ln"])?;
    for (real, weight) in [(r0, 3.0), (r1, 1.0)] {
        let sel = format!(
            "{{local_address=\"{VIP}\",local_port=\"80\",remote_address=\"{real}\",\
             remote_port=\"80\",proto=\"TCP\",local_mark=\"\"}}"
        );
        assert_eq!(
            scalar(pport, &format!("node_ipvs_backend_weight{sel}"))?,
            weight
        );
        let active = scalar(pport, &format!("node_ipvs_backend_connections_active{sel}"))?;
        let inactive = scalar(
            pport,
            &format!("node_ipvs_backend_connections_inactive{sel}"),
        )?;
        let line = listing
            .lines()
            .find(|l| l.contains(&format!("-> {real}:80")))
            .context("real listed")?;
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            active,
            f[4].parse::<f64>()?,
            "ActiveConn of {real}: {listing}"
        );
        assert_eq!(
            inactive,
            f[5].parse::<f64>()?,
            "InActConn of {real}: {listing}"
        );
    }
    assert_eq!(
        scalar(pport, "sum(node_ipvs_backend_connections_active)")?,
        2.0,
        "the two open connections"
    );
    assert_eq!(scalar(pport, "xlvs_attached_interfaces")?, 3.0);
    assert_eq!(
        scalar(pport, "xlvs_table_entries{table=\"services\"}")?,
        1.0
    );
    assert!(scalar(pport, "xlvs_datapath_total{counter=\"conn_new\"}")? >= 14.0);
    assert!(
        scalar(
            pport,
            "xlvs_program_verified_instructions{program=\"xlvs_new\"}"
        )? > 1000.0
    );
    Ok(())
}

/// A port that cannot be bound is one error line naming it, and a non-zero exit.
#[test]
fn metrics_bind_failure_is_one_clear_line() -> Result<()> {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let out = Command::new(binary("xlvs")?)
        .args(["--pin-dir", "/sys/fs/bpf/xlvs-nonexistent-metrics-test"])
        .args(["metrics", "--listen", &addr.to_string()])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [format!(
            "xlvs: metrics: cannot listen on {addr}: Address already in use (os error 98)"
        )],
        "{err}"
    );
    Ok(())
}
