//! How keepalived-exporter (the Prometheus exporter most keepalived users run) reads
//! keepalived's dump files, restated from its documented behaviour so tests can check that our
//! files give it what keepalived 2.2.7's give it:
//!
//! * text mode, keepalived.data: an instance starts at a line ` VRRP Instance = NAME` (one
//!   space); its properties are lines starting with three spaces, `KEY = VALUE` (or `KEY: …`);
//!   a line starting with five spaces is a value of the last key; the keys read are `State`,
//!   `Wantstate` (one of INIT, BACKUP, MASTER, FAULT, else an error), `Interface`,
//!   `Gratuitous ARP delay` and `Virtual Router ID` (integers, else an error) and the values of
//!   `Virtual IP (N)`; any other line ends the instance. Scripts: ` VRRP Script = NAME` with
//!   three-space `Status = GOOD|BAD` and `State = idle|…`.
//! * keepalived.stats: `VRRP Instance: NAME`, two-space section lines ending in `:`, four-space
//!   `KEY: INT` inside them, two-space `Became master: INT` / `Released master: INT`; a
//!   non-integer value is an error.
//! * JSON mode, keepalived.json: an array of `{"data": {...}, "stats": {...}}` with integer
//!   fields.
//! * a VIP value is `ADDR dev IFNAME …`: fields 0 and 2.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Deserialize;

pub const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Data {
    pub name: String,
    pub state: usize,
    pub wantstate: usize,
    pub interface: String,
    pub garp_delay: i64,
    pub vrid: i64,
    pub vips: Vec<String>,
}

fn state(v: &str) -> Result<usize> {
    match STATES.iter().position(|s| *s == v) {
        Some(i) => Ok(i),
        None => bail!("unknown state {v:?}"),
    }
}

pub fn parse_data(text: &str) -> Result<BTreeMap<String, Data>> {
    let mut out: BTreeMap<String, Data> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut key = String::new();
    for line in text.lines() {
        if line.starts_with(" VRRP Instance") && line.contains('=') {
            let name = line
                .trim()
                .split('=')
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string();
            out.insert(
                name.clone(),
                Data {
                    name: name.clone(),
                    ..Default::default()
                },
            );
            current = Some(name);
        } else if line.starts_with("   ") && current.is_some() {
            let name = current.clone().unwrap_or_default();
            let d = out.get_mut(&name).expect("current instance");
            let val;
            if line.starts_with("     ") {
                val = line.trim().to_string();
            } else {
                let parts: Vec<&str> = if line.contains('=') {
                    line.trim().split('=').collect()
                } else if line.contains(':') {
                    line.trim().split(':').collect()
                } else {
                    continue;
                };
                key = parts[0].trim().to_string();
                if key == "Virtual IP" {
                    continue;
                }
                val = parts
                    .get(1)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
            }
            if (key.starts_with("Virtual IP (") || key == "Virtual IP") && !val.is_empty() {
                d.vips.push(val.clone());
            }
            match key.as_str() {
                "State" => d.state = state(&val)?,
                "Wantstate" => d.wantstate = state(&val)?,
                "Interface" | "Listening device" => d.interface = val,
                "Gratuitous ARP delay" => d.garp_delay = val.parse()?,
                "Virtual Router ID" => d.vrid = val.parse()?,
                _ => {}
            }
        } else if line.starts_with(" VRRP Version") || line.starts_with(" VRRP Script") {
            continue;
        } else {
            current = None;
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub status: String,
    pub state: String,
}

pub fn parse_scripts(text: &str) -> Vec<Script> {
    let mut out = Vec::new();
    let mut s = Script::default();
    for line in text.lines() {
        if line.starts_with(" VRRP Script") && line.contains('=') {
            if !s.name.is_empty() {
                out.push(std::mem::take(&mut s));
            }
            s.name = line
                .trim()
                .split('=')
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string();
        } else if line.starts_with("   ") && !s.name.is_empty() {
            if let Some((k, v)) = line.trim().split_once('=') {
                match k.trim() {
                    "Status" => s.status = v.trim().to_string(),
                    "State" => s.state = v.trim().to_string(),
                    _ => {}
                }
            }
        } else if !line.starts_with("    ") && !s.name.is_empty() {
            out.push(std::mem::take(&mut s));
        }
    }
    if !s.name.is_empty() {
        out.push(s);
    }
    out
}

/// keepalived.stats: instance → counter name (`Advertisements/Sent`, `Became master`…) → value.
pub fn parse_stats(text: &str) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let (mut instance, mut section) = (String::new(), String::new());
    for line in text.lines() {
        if line.starts_with("VRRP Instance") && line.contains(':') {
            instance = line.split(':').nth(1).unwrap_or("").trim().to_string();
            out.insert(instance.clone(), BTreeMap::new());
        } else if line.starts_with("  ") && line.ends_with(':') {
            section = line.trim().trim_end_matches(':').trim().to_string();
        } else if line.starts_with("    ") && !section.is_empty() {
            let (k, v) = line.trim().split_once(':').unwrap_or((line, ""));
            let n: i64 = v.trim().parse()?;
            out.entry(instance.clone())
                .or_default()
                .insert(format!("{section}/{}", k.trim()), n);
        } else if line.starts_with("  ") && !line.starts_with("    ") {
            section.clear();
            let (k, v) = line.trim().split_once(':').unwrap_or((line, ""));
            let n: i64 = v.trim().parse()?;
            out.entry(instance.clone())
                .or_default()
                .insert(k.trim().to_string(), n);
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub struct JsonVrrp {
    pub data: JsonData,
    pub stats: JsonStats,
}

#[derive(Debug, Deserialize)]
pub struct JsonData {
    pub iname: String,
    pub state: i64,
    pub wantstate: i64,
    pub ifp_ifname: String,
    pub garp_delay: i64,
    pub vrid: i64,
    pub vips: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct JsonStats {
    pub advert_rcvd: i64,
    pub advert_sent: i64,
    pub become_master: i64,
    pub release_master: i64,
    pub packet_len_err: i64,
    pub advert_interval_err: i64,
    pub ip_ttl_err: i64,
    pub invalid_type_rcvd: i64,
    pub addr_list_err: i64,
    pub invalid_authtype: i64,
    pub authtype_mismatch: i64,
    pub auth_failure: i64,
    pub pri_zero_rcvd: i64,
    pub pri_zero_sent: i64,
}

pub fn parse_json(text: &str) -> Result<Vec<JsonVrrp>> {
    Ok(serde_json::from_str(text)?)
}

/// A VIP value's address and interface.
pub fn vip(v: &str) -> Option<(String, String)> {
    let f: Vec<&str> = v.split(' ').collect();
    (f.len() >= 3).then(|| (f[0].to_string(), f[2].to_string()))
}
