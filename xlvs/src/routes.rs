//! `xlvs routes`: the route bridge of the keepalived serving this pin directory — each VIP's
//! eligibility, why and since when, and what the routing daemon itself says it sends to each
//! neighbor; `drain`/`undrain` switch its maintenance (the bridge withdraws, or announces with
//! its `draining` attributes first).

use anyhow::{Context, Result};
use clap::Subcommand;
use dataplane::Options;

#[derive(Subcommand)]
pub enum RoutesCommand {
    /// Drain this director: create the maintenance file (the VIPs are withdrawn, or announced
    /// with the `draining` attributes for `drain_timeout`).
    Drain,
    /// End the maintenance: remove the maintenance file.
    Undrain,
}

pub fn run(opts: &Options, command: Option<RoutesCommand>, json: bool) -> Result<()> {
    let status = quagga_bridge::status::read(&opts.pin_dir)?;
    match command {
        Some(RoutesCommand::Drain) => {
            let f = &status.maintenance_file;
            if let Some(d) = f.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(f, b"").with_context(|| format!("cannot create {}", f.display()))?;
            println!("maintenance on ({})", f.display());
        }
        Some(RoutesCommand::Undrain) => {
            let f = &status.maintenance_file;
            match std::fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", f.display())),
            }
            println!("maintenance off ({})", f.display());
        }
        None => {
            let alive = quagga_bridge::status::writer_alive(&status);
            let peers = if alive {
                quagga_bridge::status::peers(&status)
            } else {
                Err(anyhow::anyhow!(
                    "keepalived (pid {}) is not running",
                    status.pid
                ))
            };
            if json {
                let v = serde_json::json!({
                    "bridge": status,
                    "running": alive,
                    "peers": peers.as_ref().ok(),
                    "peers_error": peers.as_ref().err().map(|e| format!("{e:#}")),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", quagga_bridge::status::render(&status, alive, &peers));
            }
        }
    }
    Ok(())
}
