//! `xlvs boot`: attach the data plane as `/etc/xlvs/xlvs.conf` says (what xlvs.service runs at
//! boot, before ipvsadm.service and keepalived.service program any table).
//!
//! The file has `key = value` lines, `#` comments and blank lines:
//!
//! ```text
//! interfaces = eth0 eth1     # required: where client traffic and the reals' replies arrive
//! mode = auto                # auto | native | generic
//! max_conns = 1048576        # connection-table capacity when the tables are first created
//! ```
//!
//! Any other key, a bad value, or no interfaces is an error naming the file and line; a
//! missing interface is attach's one-line error naming it, and nothing is attached.

use anyhow::{Result, bail};
use std::path::Path;

pub const DEFAULT_CONFIG: &str = "/etc/xlvs/xlvs.conf";

#[derive(Debug, Clone)]
pub struct BootConfig {
    pub interfaces: Vec<String>,
    pub mode: dataplane::XdpMode,
    pub max_conns: Option<u32>,
}

pub fn parse(path: &Path, text: &str) -> Result<BootConfig> {
    let mut interfaces = None;
    let mut mode = dataplane::XdpMode::Default;
    let mut max_conns = None;
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("{at}: expected `key = value`, found {line:?}");
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "interfaces" => {
                let list: Vec<String> = value.split_whitespace().map(String::from).collect();
                if list.is_empty() {
                    bail!("{at}: interfaces: name at least one interface");
                }
                interfaces = Some(list);
            }
            "mode" => {
                mode = match value {
                    "auto" => dataplane::XdpMode::Default,
                    "native" => dataplane::XdpMode::Driver,
                    "generic" => dataplane::XdpMode::Skb,
                    _ => bail!("{at}: mode must be auto, native or generic, not {value:?}"),
                }
            }
            "max_conns" => match value.parse::<u32>() {
                Ok(n) if n > 0 => max_conns = Some(n),
                _ => bail!("{at}: max_conns must be a positive number, not {value:?}"),
            },
            _ => bail!("{at}: unknown key {key:?} (interfaces, mode, max_conns)"),
        }
    }
    let Some(interfaces) = interfaces else {
        bail!(
            "{}: no `interfaces = …` line: name the interfaces to attach to",
            path.display()
        );
    };
    Ok(BootConfig {
        interfaces,
        mode,
        max_conns,
    })
}

pub fn load(path: &Path) -> Result<BootConfig> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<BootConfig> {
        parse(Path::new("/etc/xlvs/xlvs.conf"), text)
    }

    #[test]
    fn the_documented_file_parses() {
        let c = p("# comment\n\ninterfaces = eth0  eth1 # both directions\nmode = native\nmax_conns = 4096\n")
            .unwrap();
        assert_eq!(c.interfaces, ["eth0", "eth1"]);
        assert!(matches!(c.mode, dataplane::XdpMode::Driver));
        assert_eq!(c.max_conns, Some(4096));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = |t: &str| p(t).unwrap_err().to_string();
        assert_eq!(
            e("interfaces = eth0\nmod = native\n"),
            "/etc/xlvs/xlvs.conf:2: unknown key \"mod\" (interfaces, mode, max_conns)"
        );
        assert_eq!(
            e("interfaces = eth0\nmode = fast\n"),
            "/etc/xlvs/xlvs.conf:2: mode must be auto, native or generic, not \"fast\""
        );
        assert!(e("mode = auto\n").contains("no `interfaces = …` line"));
        assert!(e("interfaces =\n").starts_with("/etc/xlvs/xlvs.conf:1: interfaces"));
        assert!(e("eth0\n").starts_with("/etc/xlvs/xlvs.conf:1: expected `key = value`"));
        assert!(e("interfaces = eth0\nmax_conns = -3\n").contains(":2: max_conns"));
    }
}
