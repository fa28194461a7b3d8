//! What keepalived's `main.c` sets up before it starts its children: the umask (`-u`, global
//! `umask`), core dumps (`-m`, `-M[=PATTERN]`, the pattern restored at exit), the network
//! namespace (`-s`, `net_namespace`: setns into `/run/netns/NAME`, a private mount namespace
//! with `/run/keepalived/keepalived_NAME` mounted on `/run/keepalived`), and the pid file
//! names (`-p/-r/-c/-b`, else `instance NAME` → `/run/keepalived/keepalived_NAME.pid`,
//! `vrrp_NAME.pid`…, `use_pid_dir` or a namespace → `/run/keepalived/keepalived.pid`,
//! `vrrp.pid`…, else `/run/keepalived.pid`, `/run/keepalived_vrrp.pid`…).
//!
//! `XLVS_KEEPALIVED_RUN_ROOT` replaces `/run` in those paths (tests).

use std::path::{Path, PathBuf};

use keepalived_conf::model::KeepalivedConfig;

use crate::cli::Cli;

fn run_root() -> PathBuf {
    std::env::var_os("XLVS_KEEPALIVED_RUN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run"))
}

/// The namespace to run in: `-s` over `net_namespace`.
pub fn namespace(cli: &Cli, cfg: &KeepalivedConfig) -> Option<String> {
    cli.namespace
        .clone()
        .or_else(|| cfg.top_level.net_namespace.clone())
}

/// keepalived's pid files for the parts that run: the main one always, the checkers' with
/// virtual servers, VRRP's with instances or static addresses, BFD's with bfd_instances.
pub fn pid_paths(cli: &Cli, cfg: &KeepalivedConfig) -> Vec<PathBuf> {
    let root = run_root();
    let instance = cfg.top_level.instance.as_deref();
    let use_dir = cfg.top_level.use_pid_dir || instance.is_some() || namespace(cli, cfg).is_some();
    let dir = root.join("keepalived");
    let name = |explicit: &Option<PathBuf>, short: &str| -> PathBuf {
        if let Some(p) = explicit {
            return p.clone();
        }
        match (instance, use_dir) {
            (Some(i), _) => dir.join(format!("{short}_{i}.pid")),
            (None, true) => dir.join(format!("{short}.pid")),
            (None, false) if short == "keepalived" => root.join("keepalived.pid"),
            (None, false) => root.join(format!("keepalived_{short}.pid")),
        }
    };
    let mut v = vec![name(&cli.pid, "keepalived")];
    if !cfg.virtual_servers.is_empty() && !cli.vrrp {
        v.push(name(&cli.checkers_pid, "checkers"));
    }
    if vrrp::daemon::needed(cfg) && !cli.check {
        v.push(name(&cli.vrrp_pid, "vrrp"));
    }
    if !cfg.bfd_instances.is_empty() && !cli.no_bfd {
        v.push(name(&cli.bfd_pid, "bfd"));
    }
    v
}

/// `setns` into `/run/netns/NAME`, then a private mount namespace in which
/// `<run>/keepalived/keepalived_NAME` is mounted on `<run>/keepalived`. Must run while the
/// process has a single thread (unshare of the mount namespace requires it).
pub fn enter_namespace(name: &str) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, setns, unshare};
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {}: {e}", path.display()))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare mount namespace: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making mounts private: {e}"))?;
    let dir = run_root().join("keepalived");
    let own = dir.join(format!("keepalived_{name}"));
    std::fs::create_dir_all(&own).map_err(|e| format!("{}: {e}", own.display()))?;
    mount(
        Some(&own),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("mount {} on {}: {e}", own.display(), dir.display()))?;
    Ok(())
}

/// keepalived's umask words (global `umask IWGRP|IWOTH`).
fn umask_bits(word: &str) -> Option<u32> {
    Some(match word {
        "IRUSR" => 0o400,
        "IWUSR" => 0o200,
        "IXUSR" => 0o100,
        "IRGRP" => 0o040,
        "IWGRP" => 0o020,
        "IXGRP" => 0o010,
        "IROTH" => 0o004,
        "IWOTH" => 0o002,
        "IXOTH" => 0o001,
        _ => return None,
    })
}

/// A C-style number (`0` prefix octal, `0x` hex).
fn c_number(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// The umask to set: `-u` over the global `umask` (a number or `IWGRP|IWOTH…`).
pub fn umask_value(cli: &Cli, cfg: &KeepalivedConfig) -> Option<u32> {
    if let Some(u) = &cli.umask {
        return c_number(u).map(|v| v & 0o777);
    }
    let words = cfg.global.extra_args("umask")?.join("");
    if let Some(n) = c_number(&words) {
        return Some(n & 0o777);
    }
    words
        .split('|')
        .map(|w| umask_bits(w.trim()))
        .try_fold(0u32, |acc, b| b.map(|b| acc | b))
}

pub fn apply_umask(cli: &Cli, cfg: &KeepalivedConfig) {
    if let Some(v) = umask_value(cli, cfg) {
        // SAFETY: umask has no memory effects.
        unsafe { libc::umask(v as libc::mode_t) };
    } else if let Some(u) = &cli.umask {
        eprintln!("Invalid --umask value {u}");
    }
}

/// `-m` / `-M`: unlimited core dumps; with `-M` also the kernel's core pattern, put back when
/// the guard is dropped (keepalived restores it at exit).
pub struct CoreDumps {
    saved_pattern: Option<String>,
}

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

impl CoreDumps {
    pub fn set(cli: &Cli) -> Option<CoreDumps> {
        if !cli.core_dump && cli.core_dump_pattern.is_none() {
            return None;
        }
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &unlimited) } != 0 {
            log::warn!(
                "Failed to set core file size limit: {}",
                std::io::Error::last_os_error()
            );
        }
        let saved_pattern = cli.core_dump_pattern.as_ref().and_then(|p| {
            let old = std::fs::read_to_string(CORE_PATTERN).ok()?;
            std::fs::write(CORE_PATTERN, p)
                .inspect_err(|e| log::warn!("Unable to set core_pattern: {e}"))
                .ok()?;
            Some(old)
        });
        Some(CoreDumps { saved_pattern })
    }
}

impl Drop for CoreDumps {
    fn drop(&mut self) {
        if let Some(old) = &self.saved_pattern {
            let _ = std::fs::write(CORE_PATTERN, old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["keepalived"];
        v.extend_from_slice(args);
        Cli::parse_from(v)
    }

    fn conf(text: &str) -> KeepalivedConfig {
        keepalived_conf::parse_str(text, "t", &Default::default()).config
    }

    const VRRP: &str = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n \
                        virtual_ipaddress {\n  198.18.0.9\n }\n}\n";

    #[test]
    fn pid_file_names_as_keepalived() {
        let names = |c: &Cli, text: &str| -> Vec<String> {
            pid_paths(c, &conf(text))
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        assert_eq!(
            names(&cli(&[]), VRRP),
            ["/run/keepalived.pid", "/run/keepalived_vrrp.pid"]
        );
        assert_eq!(
            names(&cli(&[]), &format!("use_pid_dir\n{VRRP}")),
            ["/run/keepalived/keepalived.pid", "/run/keepalived/vrrp.pid"]
        );
        assert_eq!(
            names(
                &cli(&[]),
                &format!("instance I1\n{VRRP}bfd_instance B {{\n neighbor_ip 198.18.0.2\n}}\n")
            ),
            [
                "/run/keepalived/keepalived_I1.pid",
                "/run/keepalived/vrrp_I1.pid",
                "/run/keepalived/bfd_I1.pid"
            ]
        );
        assert_eq!(
            names(&cli(&["-s", "ns1", "-r", "/x/v.pid"]), VRRP),
            ["/run/keepalived/keepalived.pid", "/x/v.pid"]
        );
    }

    #[test]
    fn umask_from_the_command_line_or_the_configuration() {
        assert_eq!(umask_value(&cli(&["-u", "077"]), &conf("")), Some(0o77));
        assert_eq!(umask_value(&cli(&["-u", "0x12"]), &conf("")), Some(0x12));
        assert_eq!(
            umask_value(&cli(&[]), &conf("global_defs {\n umask IWGRP|IWOTH\n}\n")),
            Some(0o22)
        );
        assert_eq!(
            umask_value(&cli(&[]), &conf("global_defs {\n umask 0027\n}\n")),
            Some(0o27)
        );
        assert_eq!(umask_value(&cli(&[]), &conf("")), None);
    }
}
