//! `cargo xtask deb`: the Debian packages, built with dpkg-deb from the release binaries and
//! the files under `packaging/`.
//!
//! * `xlvs`: the `xlvs` command, xlvs.service (attach at boot from /etc/xlvs/xlvs.conf),
//!   xlvs-timers.service, xlvs-metrics.service, man pages generated from the command line,
//!   shell completions.
//! * `xlvs-ipvsadm`: `ipvsadm`, `ipvsadm-save`, `ipvsadm-restore`, ipvsadm.service (Debian's
//!   init script's settings and rules file), ipvsadm(8).
//! * `xlvs-keepalived`: `keepalived`, Debian's keepalived.service ordered after xlvs.service,
//!   keepalived(8) (generated, plus what differs) and keepalived.conf(5), completions.
//!
//! Taking over Debian's `ipvsadm` and `keepalived`: the same commands at the same paths
//! (/sbin/ipvsadm, /usr/sbin/keepalived), units and settings files, so the packages
//! `Conflicts` + `Replaces` them (dpkg removes the distribution's package when ours is
//! installed, and hands its conffiles over) and `Provides` them with their version, so
//! packages and scripts that depend on `ipvsadm` or `keepalived` keep working.
//! update-alternatives would need the distribution's packages to register their binaries as
//! alternatives, which they do not; diversions would leave two units named keepalived.service.

use anyhow::{Context, Result, bail, ensure};
use md5::{Digest, Md5};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian revision of our packages.
const REVISION: &str = "1";
/// The versions we provide the distribution's packages at (what we follow).
const PROVIDES_IPVSADM: &str = "ipvsadm (= 1:1.31-99)";
const PROVIDES_KEEPALIVED: &str = "keepalived (= 1:2.2.7-99)";

pub struct Options {
    /// Where the binaries are (`None`: build them with `cargo build --release`).
    pub bin_dir: Option<PathBuf>,
    pub out: PathBuf,
    /// dpkg-deb's compressor: xz (Debian's default), gzip or none (quick, for tests).
    pub compress: String,
}

/// A file to put in a package: its path in the package, its content or source, its mode.
struct Item {
    dest: String,
    from: Source,
    mode: u32,
}

enum Source {
    File(PathBuf),
    Text(String),
    Bytes(Vec<u8>),
    Symlink(String),
}

struct Package {
    name: &'static str,
    description: &'static str,
    depends: String,
    relations: Vec<(&'static str, String)>,
    items: Vec<Item>,
    conffiles: Vec<&'static str>,
    postinst: Option<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn file(dest: &str, src: &str, mode: u32) -> Item {
    Item {
        dest: dest.into(),
        from: Source::File(root().join(src)),
        mode,
    }
}

fn text(dest: &str, t: String, mode: u32) -> Item {
    Item {
        dest: dest.into(),
        from: Source::Text(t),
        mode,
    }
}

pub fn build(opts: &Options) -> Result<Vec<PathBuf>> {
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => {
            crate::build_release_binaries()?;
            root().join("target/release")
        }
    };
    for b in ["xlvs", "ipvsadm", "keepalived"] {
        ensure!(
            bin_dir.join(b).exists(),
            "{} has no {b}: build it first (cargo build --release)",
            bin_dir.display()
        );
    }
    let version = format!("{}-{REVISION}", env!("CARGO_PKG_VERSION"));
    let arch = String::from_utf8(
        Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .context("dpkg --print-architecture")?
            .stdout,
    )?
    .trim()
    .to_string();
    std::fs::create_dir_all(&opts.out)?;
    let mut out = Vec::new();
    for p in packages(&bin_dir, &version)? {
        out.push(assemble(&p, &version, &arch, &opts.out, &opts.compress)?);
    }
    Ok(out)
}

fn packages(bin: &Path, version: &str) -> Result<Vec<Package>> {
    let binary = |name: &str| -> Result<Item> {
        // Where Debian's package has it: /sbin/ipvsadm (ipvsadm), /usr/sbin/keepalived.
        // On merged-/usr systems /sbin is /usr/sbin, and a replaced package's files are removed
        // by their own path: ours must be the same path or dpkg deletes it with theirs.
        let dir = if name == "ipvsadm" {
            "sbin"
        } else {
            "usr/sbin"
        };
        Ok(Item {
            dest: format!("{dir}/{name}"),
            from: Source::Bytes(stripped(&bin.join(name))?),
            mode: 0o755,
        })
    };
    let mut xlvs_items = vec![
        binary("xlvs")?,
        file(
            "lib/systemd/system/xlvs.service",
            "packaging/systemd/xlvs.service",
            0o644,
        ),
        file(
            "lib/systemd/system/xlvs-timers.service",
            "packaging/systemd/xlvs-timers.service",
            0o644,
        ),
        file(
            "lib/systemd/system/xlvs-metrics.service",
            "packaging/systemd/xlvs-metrics.service",
            0o644,
        ),
        file("etc/xlvs/xlvs.conf", "packaging/etc/xlvs.conf", 0o644),
        file(
            "etc/default/xlvs-metrics",
            "packaging/etc/default-xlvs-metrics",
            0o644,
        ),
    ];
    xlvs_items.extend(man_pages(xlvs::command(), "8", None)?);
    xlvs_items.extend(completions(xlvs::command(), "xlvs"));

    let mut ipvsadm_items = vec![
        binary("ipvsadm")?,
        Item {
            dest: "sbin/ipvsadm-save".into(),
            from: Source::Symlink("ipvsadm".into()),
            mode: 0o777,
        },
        Item {
            dest: "sbin/ipvsadm-restore".into(),
            from: Source::Symlink("ipvsadm".into()),
            mode: 0o777,
        },
        file(
            "lib/systemd/system/ipvsadm.service",
            "packaging/systemd/ipvsadm.service",
            0o644,
        ),
        file(
            "usr/lib/xlvs/ipvsadm-service",
            "packaging/lib/ipvsadm-service",
            0o755,
        ),
        file(
            "etc/default/ipvsadm",
            "packaging/etc/default-ipvsadm",
            0o644,
        ),
        file("etc/ipvsadm.rules", "packaging/etc/ipvsadm.rules", 0o644),
        gz_man(
            "ipvsadm.8",
            std::fs::read(root().join("packaging/man/ipvsadm.8"))?,
        )?,
    ];
    for alias in ["ipvsadm-save", "ipvsadm-restore"] {
        ipvsadm_items.push(gz_man(
            &format!("{alias}.8"),
            b".so man8/ipvsadm.8\n".to_vec(),
        )?);
    }

    let differences =
        std::fs::read_to_string(root().join("packaging/man/keepalived.differences.8"))?;
    let mut keepalived_items = vec![
        binary("keepalived")?,
        file(
            "lib/systemd/system/keepalived.service",
            "packaging/systemd/keepalived.service",
            0o644,
        ),
        file(
            "etc/default/keepalived",
            "packaging/etc/default-keepalived",
            0o644,
        ),
        gz_man(
            "keepalived.conf.5",
            std::fs::read(root().join("packaging/man/keepalived.conf.5"))?,
        )?,
    ];
    keepalived_items.extend(man_pages(keepalived::command(), "8", Some(&differences))?);
    keepalived_items.extend(completions(keepalived::command(), "keepalived"));

    let postinst = |units: &[&str]| {
        let mut s = String::from("#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n");
        let _ = writeln!(
            s,
            "    if command -v deb-systemd-helper >/dev/null 2>&1; then\n        for u in {}; do deb-systemd-helper enable \"$u\" >/dev/null || true; done\n    fi",
            units.join(" ")
        );
        s.push_str(
            "    if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi\nfi\n",
        );
        s
    };
    let depends_xlvs = format!("xlvs (= {version})");
    Ok(vec![
        Package {
            name: "xlvs",
            description: "XDP load balancer replacing kernel LVS (IPVS)\n \
                 The xlvs data plane: an XDP program and pinned tables doing what kernel IPVS\n \
                 does, with the xlvs command to attach, inspect and export metrics.",
            depends: "libc6, libgcc-s1".into(),
            relations: Vec::new(),
            items: xlvs_items,
            conffiles: vec!["/etc/xlvs/xlvs.conf", "/etc/default/xlvs-metrics"],
            postinst: Some(postinst(&["xlvs.service", "xlvs-timers.service"])),
        },
        Package {
            name: "xlvs-ipvsadm",
            description: "ipvsadm for the xlvs XDP load balancer\n \
                 ipvsadm 1.31's commands, output and exit codes on the xlvs data plane,\n \
                 with ipvsadm-save, ipvsadm-restore and ipvsadm.service.",
            depends: format!("libc6, libgcc-s1, {depends_xlvs}"),
            relations: vec![
                ("Conflicts", "ipvsadm".into()),
                ("Replaces", "ipvsadm".into()),
                ("Provides", PROVIDES_IPVSADM.into()),
            ],
            items: ipvsadm_items,
            conffiles: vec!["/etc/default/ipvsadm", "/etc/ipvsadm.rules"],
            postinst: Some(postinst(&["ipvsadm.service"])),
        },
        Package {
            name: "xlvs-keepalived",
            description: "keepalived for the xlvs XDP load balancer\n \
                 Reads keepalived 2.2 configurations: health checkers, VRRP and virtual\n \
                 servers programmed into the xlvs data plane.",
            depends: format!("libc6, libgcc-s1, {depends_xlvs}"),
            relations: vec![
                ("Conflicts", "keepalived".into()),
                ("Replaces", "keepalived".into()),
                ("Provides", PROVIDES_KEEPALIVED.into()),
            ],
            items: keepalived_items,
            conffiles: vec!["/etc/default/keepalived"],
            postinst: Some(postinst(&["keepalived.service"])),
        },
    ])
}

/// The binary without symbols and debug information, as dh_strip installs it.
fn stripped(path: &Path) -> Result<Vec<u8>> {
    let tmp = std::env::temp_dir().join(format!(
        "xlvs-deb-strip-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("bin")
    ));
    let st = Command::new("strip")
        .args(["--strip-unneeded", "-o"])
        .arg(&tmp)
        .arg(path)
        .status()
        .context("strip (binutils)")?;
    ensure!(st.success(), "strip {} failed", path.display());
    let bytes = std::fs::read(&tmp)?;
    std::fs::remove_file(&tmp)?;
    Ok(bytes)
}

/// gzip -9n (Debian's man pages are compressed, without a timestamp).
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-9nc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("gzip")?;
    child.stdin.take().context("stdin")?.write_all(data)?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "gzip failed");
    Ok(out.stdout)
}

fn gz_man(name: &str, roff: Vec<u8>) -> Result<Item> {
    let section = name.rsplit('.').next().unwrap_or("8");
    Ok(Item {
        dest: format!("usr/share/man/man{section}/{name}.gz"),
        from: Source::Bytes(gzip(&roff)?),
        mode: 0o644,
    })
}

/// One page per command and subcommand (`xlvs.8`, `xlvs-attach.8`…), from clap; `extra` is
/// roff appended to the top page.
fn man_pages(cmd: clap::Command, section: &str, extra: Option<&str>) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let mut pages = vec![(cmd.get_name().to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        // clap names are 'static; this one-shot tool can leak a few.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (i, (name, c)) in pages.into_iter().enumerate() {
        let mut roff = Vec::new();
        clap_mangen::Man::new(c)
            .section(section)
            .source(format!("xlvs {}", env!("CARGO_PKG_VERSION")))
            .render(&mut roff)?;
        if i == 0
            && let Some(e) = extra
        {
            roff.extend_from_slice(e.as_bytes());
        }
        items.push(gz_man(&format!("{name}.{section}"), roff)?);
    }
    Ok(items)
}

fn completions(mut cmd: clap::Command, name: &str) -> Vec<Item> {
    use clap_complete::Shell;
    let mut items = Vec::new();
    for (shell, dest) in [
        (
            Shell::Bash,
            format!("usr/share/bash-completion/completions/{name}"),
        ),
        (
            Shell::Zsh,
            format!("usr/share/zsh/vendor-completions/_{name}"),
        ),
        (
            Shell::Fish,
            format!("usr/share/fish/vendor_completions.d/{name}.fish"),
        ),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut buf);
        items.push(Item {
            dest,
            from: Source::Bytes(buf),
            mode: 0o644,
        });
    }
    items
}

fn assemble(p: &Package, version: &str, arch: &str, out: &Path, compress: &str) -> Result<PathBuf> {
    let stage = out.join(format!("stage-{}", p.name));
    let _ = std::fs::remove_dir_all(&stage);
    let mut items: Vec<&Item> = p.items.iter().collect();
    let copyright = text(
        &format!("usr/share/doc/{}/copyright", p.name),
        std::fs::read_to_string(root().join("packaging/copyright"))?,
        0o644,
    );
    items.push(&copyright);
    let mut md5sums = String::new();
    let mut size = 0u64;
    for it in items {
        let dest = stage.join(&it.dest);
        std::fs::create_dir_all(dest.parent().context("parent")?)?;
        let bytes = match &it.from {
            Source::Symlink(target) => {
                std::os::unix::fs::symlink(target, &dest)?;
                continue;
            }
            Source::File(src) => {
                std::fs::read(src).with_context(|| format!("{}", src.display()))?
            }
            Source::Text(t) => t.clone().into_bytes(),
            Source::Bytes(b) => b.clone(),
        };
        std::fs::write(&dest, &bytes)?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(it.mode))?;
        size += bytes.len() as u64;
        if !it.dest.starts_with("etc/") {
            let _ = writeln!(md5sums, "{:x}  {}", Md5::digest(&bytes), it.dest);
        }
    }
    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    let mut control = format!(
        "Package: {}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: xlvs developers <xlvs@example.invalid>\n\
         Installed-Size: {}\nDepends: {}\n",
        p.name,
        size.div_ceil(1024),
        p.depends
    );
    for (k, v) in &p.relations {
        let _ = writeln!(control, "{k}: {v}");
    }
    let _ = write!(
        control,
        "Section: net\nPriority: optional\nHomepage: https://example.invalid/xlvs\n\
         Description: {}\n",
        p.description
    );
    std::fs::write(debian.join("control"), control)?;
    std::fs::write(debian.join("md5sums"), md5sums)?;
    let conffiles: String = p.conffiles.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(debian.join("conffiles"), conffiles)?;
    if let Some(s) = &p.postinst {
        let path = debian.join("postinst");
        std::fs::write(&path, s)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let deb = out.join(format!("{}_{version}_{arch}.deb", p.name));
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compress}"), "--build"])
        .arg(&stage)
        .arg(&deb)
        .stdout(std::process::Stdio::null())
        .status()
        .context("dpkg-deb")?;
    if !st.success() {
        bail!("dpkg-deb --build {} failed", stage.display());
    }
    std::fs::remove_dir_all(&stage)?;
    Ok(deb)
}
