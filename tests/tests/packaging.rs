//! The Debian packages (`cargo xtask deb`) installed with `dpkg --root` into a throwaway
//! Debian root over Debian's own `keepalived` and `ipvsadm`, which they take over; the
//! installed binaries run there (chroot), the units pass `systemd-analyze verify`, and the
//! man pages, completions and conffiles are where Debian puts them. Needs root, dpkg and apt
//! (Debian's libc6, libgcc-s1, dash, keepalived and ipvsadm packages are fetched once into
//! /var/tmp/xlvs-deb-cache).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use xlvs_tests::lab::binary;
use xlvs_tests::netns::{is_root, unique_prefix};

const CACHE: &str = "/var/tmp/xlvs-deb-cache";
const BASE: [&str; 3] = ["libc6", "libgcc-s1", "dash"];
const DISTRO: [&str; 2] = ["keepalived", "ipvsadm"];

fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The cached .deb of `name`, downloaded with apt if missing.
fn cached_deb(name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(CACHE)?;
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(CACHE)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
            })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    run(Command::new("apt-get")
        .args(["download", "-q", name])
        .current_dir(CACHE))?;
    find().with_context(|| format!("apt-get download {name} left no .deb"))
}

/// A throwaway root (removed on drop): merged /usr, Debian's libc and dash extracted as
/// debootstrap's first stage does, an empty dpkg database, /dev/null, and the init-system
/// helpers maintainer scripts call replaced by no-ops (no init system runs here).
struct Root(PathBuf);

impl Root {
    fn new() -> Result<Root> {
        let r = std::env::temp_dir().join(format!("xlvs-debroot-{}", unique_prefix("pk")));
        let root = Root(r.clone());
        for d in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "var/lib/dpkg/info",
        ] {
            std::fs::create_dir_all(r.join(d))?;
        }
        std::fs::create_dir_all(r.join("var/lib/dpkg/updates"))?;
        for d in ["etc", "tmp", "run", "dev"] {
            std::fs::create_dir_all(r.join(d))?;
        }
        for d in ["bin", "sbin", "lib", "lib64"] {
            std::os::unix::fs::symlink(format!("usr/{d}"), r.join(d))?;
        }
        std::fs::write(r.join("var/lib/dpkg/status"), "")?;
        std::fs::write(r.join("var/lib/dpkg/available"), "")?;
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(r.join("dev/null"))
            .args(["c", "1", "3"]))?;
        for p in BASE {
            let deb = cached_deb(p)?;
            let sh = format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -x --keep-directory-symlink -C '{}'",
                deb.display(),
                r.display()
            );
            run(Command::new("sh").args(["-c", &sh]))?;
        }
        let _ = std::fs::remove_file(r.join("usr/bin/sh"));
        std::os::unix::fs::symlink("dash", r.join("usr/bin/sh"))?;
        for s in [
            "invoke-rc.d",
            "deb-systemd-helper",
            "deb-systemd-invoke",
            "update-rc.d",
        ] {
            let p = r.join("usr/sbin").join(s);
            std::fs::write(&p, "#!/bin/sh\nexit 0\n")?;
            run(Command::new("chmod").arg("755").arg(&p))?;
        }
        Ok(root)
    }

    fn dpkg(&self, args: &[&str]) -> Result<Output> {
        run(Command::new("dpkg")
            .arg(format!("--root={}", self.0.display()))
            .args(args))
    }

    fn chroot(&self, args: &[&str]) -> Result<Output> {
        Command::new("chroot")
            .arg(&self.0)
            .args(args)
            .output()
            .with_context(|| format!("chroot {args:?}"))
    }

    fn status(&self, pkg: &str) -> String {
        Command::new("dpkg-query")
            .arg(format!("--root={}", self.0.display()))
            .args(["-W", "-f=${db:Status-Abbrev}", pkg])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn zcat(p: &Path) -> Result<String> {
    let o = run(Command::new("zcat").arg(p))?;
    Ok(String::from_utf8(o.stdout)?)
}

#[test]
fn packages_take_over_debians_and_run_in_a_throwaway_root() -> Result<()> {
    if !is_root() || !Path::new("/usr/bin/dpkg-deb").exists() {
        xlvs_tests::skip("needs root and dpkg");
        return Ok(());
    }
    let bins = binary("xlvs")?.parent().context("bin dir")?.to_path_buf();
    let out = std::env::temp_dir().join(format!("xlvs-debs-{}", unique_prefix("pk")));
    let built = run(Command::new(binary("xtask")?)
        .args(["deb", "--compress", "none", "--bin-dir"])
        .arg(&bins)
        .arg("--out")
        .arg(&out))?;
    let debs: Vec<String> = String::from_utf8(built.stdout)?
        .lines()
        .map(String::from)
        .collect();
    ensure!(debs.len() == 3, "three packages: {debs:?}");
    let root = Root::new()?;

    // Debian's packages first (unpacked: their configuration needs debconf), then ours.
    let theirs: Vec<String> = DISTRO
        .iter()
        .map(|p| cached_deb(p).map(|d| d.display().to_string()))
        .collect::<Result<_>>()?;
    let mut args = vec!["--force-depends", "--unpack"];
    args.extend(theirs.iter().map(|s| s.as_str()));
    root.dpkg(&args)?;
    ensure!(
        root.status("keepalived").starts_with("iU"),
        "{}",
        root.status("keepalived")
    );
    let mut args = vec!["--force-depends", "-i"];
    args.extend(debs.iter().map(|s| s.as_str()));
    let installed = root.dpkg(&args)?;
    for p in ["xlvs", "xlvs-ipvsadm", "xlvs-keepalived"] {
        assert_eq!(root.status(p), "ii", "{p}: {}", text(&installed));
    }
    for p in DISTRO {
        let st = root.status(p);
        assert!(
            !st.starts_with("ii") && !st.starts_with("iU"),
            "{p} was taken over: {st}"
        );
    }

    // The commands, where Debian's were (merged /usr: /sbin is /usr/sbin).
    let v = root.chroot(&["/usr/sbin/keepalived", "--version"])?;
    assert!(
        text(&v).starts_with("Keepalived v2.2.7 (xlvs "),
        "{}",
        text(&v)
    );
    let s = root.chroot(&["/usr/sbin/keepalived", "--signum=JSON"])?;
    assert_eq!(String::from_utf8_lossy(&s.stdout), "36\n");
    std::fs::create_dir_all(root.path("etc/keepalived"))?;
    std::fs::write(
        root.path("etc/keepalived/keepalived.conf"),
        "virtual_server 198.18.100.1 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
         real_server 198.18.2.2 80 {\n    weight 1\n  }\n}\n",
    )?;
    let t = root.chroot(&["/usr/sbin/keepalived", "-t"])?;
    assert_eq!(t.status.code(), Some(0), "keepalived -t: {}", text(&t));
    for (cmd, says) in [
        ("/sbin/ipvsadm", "ipvsadm v1.31 2019/12/24"),
        ("/usr/sbin/ipvsadm", "ipvsadm v1.31 2019/12/24"),
        ("/sbin/ipvsadm-save", "Usage: ipvsadm-save [-n]"),
    ] {
        let h = root.chroot(&[cmd, "-h"])?;
        assert!(text(&h).starts_with(says), "{cmd}: {}", text(&h));
    }
    let st = root.chroot(&["/usr/sbin/xlvs", "--pin-dir", "/run/none", "status"])?;
    assert!(text(&st).starts_with("not loaded"), "{}", text(&st));
    let boot = root.chroot(&["/usr/sbin/xlvs", "boot"])?;
    assert!(!boot.status.success());
    let conf = std::fs::read_to_string(root.path("etc/xlvs/xlvs.conf"))?;
    assert!(conf.contains("\ninterfaces = eth0\n"), "{conf}");

    // conffiles (taken over from Debian's packages where they had them).
    let cf = run(Command::new("dpkg-query")
        .arg(format!("--root={}", root.0.display()))
        .args([
            "-W",
            "-f=${Conffiles}\n",
            "xlvs",
            "xlvs-ipvsadm",
            "xlvs-keepalived",
        ]))?;
    let cf = String::from_utf8(cf.stdout)?;
    for f in [
        "/etc/xlvs/xlvs.conf",
        "/etc/default/xlvs-metrics",
        "/etc/default/ipvsadm",
        "/etc/ipvsadm.rules",
        "/etc/default/keepalived",
    ] {
        assert!(cf.contains(&format!(" {f} ")), "{f} is a conffile: {cf}");
    }

    // Man pages (generated from the command lines, and the hand-written ones) and completions.
    let man = |p: &str| zcat(&root.path(&format!("usr/share/man/{p}.gz")));
    assert!(man("man8/xlvs.8")?.contains(".TH xlvs 8"));
    assert!(man("man8/xlvs-metrics.8")?.contains("listen"));
    let ka = man("man8/keepalived.8")?;
    assert!(ka.contains("--signum") && ka.contains("WHAT DIFFERS FROM KEEPALIVED 2.2.7"));
    assert!(man("man5/keepalived.conf.5")?.contains("WHAT DIFFERS"));
    assert!(man("man8/ipvsadm.8")?.contains("WHAT DIFFERS FROM IPVSADM 1.31"));
    assert_eq!(man("man8/ipvsadm-save.8")?, ".so man8/ipvsadm.8\n");
    for f in [
        "usr/share/bash-completion/completions/xlvs",
        "usr/share/bash-completion/completions/keepalived",
        "usr/share/zsh/vendor-completions/_xlvs",
        "usr/share/fish/vendor_completions.d/keepalived.fish",
    ] {
        assert!(root.path(f).exists(), "{f}");
    }

    // The units pass systemd-analyze verify in that root (with systemd's own units and
    // /bin/kill, which every Debian has, copied in).
    if Path::new("/usr/bin/systemd-analyze").exists() {
        run(Command::new("cp")
            .args(["-rn", "/usr/lib/systemd/system/."])
            .arg(root.path("usr/lib/systemd/system/")))?;
        run(Command::new("cp")
            .arg("/usr/bin/kill")
            .arg(root.path("usr/bin/kill")))?;
        let units: Vec<PathBuf> = [
            "xlvs.service",
            "xlvs-timers.service",
            "xlvs-metrics.service",
            "keepalived.service",
            "ipvsadm.service",
        ]
        .iter()
        .map(|u| root.path("usr/lib/systemd/system").join(u))
        .collect();
        let v = Command::new("systemd-analyze")
            .arg(format!("--root={}", root.0.display()))
            .args(["--man=no", "verify"])
            .args(&units)
            .output()?;
        assert!(
            v.status.success() && v.stderr.is_empty(),
            "verify: {}",
            text(&v)
        );
    } else {
        eprintln!("systemd-analyze verify skipped: no systemd-analyze");
    }

    // Removal keeps the conffiles; purge removes them.
    root.dpkg(&["-r", "xlvs-keepalived"])?;
    assert!(!root.path("usr/sbin/keepalived").exists());
    assert!(root.path("etc/default/keepalived").exists());
    root.dpkg(&["--purge", "xlvs-keepalived"])?;
    assert!(!root.path("etc/default/keepalived").exists());
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
