//! Parse time of a generated configuration: 10 000 virtual servers with
//! 4 real servers each (target: < 200 ms in release).
//! Run: cargo bench -p keepalived-conf --bench parse_large

use keepalived_conf::{ParseOptions, parse_str};
use std::fmt::Write;
use std::time::Instant;

fn generate(n_vs: usize, n_rs: usize) -> String {
    let mut s = String::with_capacity(n_vs * n_rs * 200);
    s.push_str("global_defs {\n    router_id bench\n}\n");
    for i in 0..n_vs {
        let (a, b) = (i / 250, i % 250 + 1);
        let _ = write!(
            s,
            "virtual_server 198.18.{a}.{b} 80 {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    persistence_timeout 50\n    protocol TCP\n"
        );
        for r in 0..n_rs {
            let _ = write!(
                s,
                "    real_server 198.19.{a}.{} 8080 {{\n        weight {}\n        TCP_CHECK {{\n            connect_port 8080\n            connect_timeout 3\n            retry 3\n            delay_before_retry 2\n        }}\n    }}\n",
                (b + r * 60) % 250 + 1,
                r + 1
            );
        }
        s.push_str("}\n");
    }
    s
}

fn main() {
    let text = generate(10_000, 4);
    let opts = ParseOptions::with_config_id("bench");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let p = parse_str(&text, "bench.conf", &opts);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(p.config.virtual_servers.len(), 10_000);
        assert!(
            p.config
                .virtual_servers
                .iter()
                .all(|v| v.real_servers.len() == 4)
        );
        assert!(!p.diagnostics.has_config_errors());
        best = best.min(ms);
    }
    println!(
        "parse 10000 virtual_servers x 4 real_servers ({} lines, {} KiB): best of 5 = {best:.1} ms (target < 200 ms)",
        text.lines().count(),
        text.len() / 1024
    );
}
