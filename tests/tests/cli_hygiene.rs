//! What every command-line tool owes its caller whatever it is asked: a closed pipe
//! (`xlvs status | head`) ends it quietly, never with a panic; without privileges it says
//! "Permission denied" (ipvsadm exactly as 1.31 does on a kernel with IPVS) and changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use xlvs_tests::lab::binary;
use xlvs_tests::netns::is_root;

/// A private pin directory, unloaded on drop.
struct Pins(PathBuf);

impl Pins {
    fn new(tag: &str) -> Pins {
        Pins(PathBuf::from(format!(
            "/sys/fs/bpf/xlvs-hygiene-{tag}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = dataplane::unload(&dataplane::Options {
            pin_dir: self.0.clone(),
            max_conns: 1024,
        });
    }
}

/// `sh -c SCRIPT` with the tools on PATH and the given pin directory: (status, stderr).
fn shell(script: &str, pins: &Path) -> (Option<i32>, String) {
    let dir = binary("xlvs").unwrap().parent().unwrap().to_path_buf();
    let out = Command::new("sh")
        .args(["-c", script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("XLVS_PIN_DIR", pins)
        .env("XLVS_MAX_CONNS", "1024")
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_every_listing_quietly() {
    if !is_root() {
        xlvs_tests::skip("needs root (BPF)");
        return;
    }
    let pins = Pins::new("pipe");
    let (code, err) = shell("ipvsadm -A -t 198.18.0.1:80 -s rr", &pins.0);
    assert_eq!(code, Some(0), "{err}");
    let tmp = std::env::temp_dir().join(format!("xlvs-hygiene-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let status = tmp.join("status");
    for cmd in [
        "ipvsadm -Ln",
        "ipvsadm -S -n",
        "ipvsadm-save -n",
        "ipvsadm -Lnc",
        "xlvs status",
        "keepalived --help",
    ] {
        // The reader is gone before the command writes anything (`true` reads nothing and
        // exits; the command starts later); the command's own status is kept.
        let script = format!(
            "ln -sf \"$(command -v ipvsadm)\" {tmp}/ipvsadm-save; PATH={tmp}:$PATH; \
             {{ sleep 0.3; {cmd}; echo $? > {status}; }} | true; sleep 0.1; \
             for i in $(seq 200); do [ -s {status} ] && break; sleep 0.05; done",
            tmp = tmp.display(),
            status = status.display(),
        );
        let (_, err) = shell(&script, &pins.0);
        let written = std::fs::read_to_string(&status).unwrap_or_default();
        let _ = std::fs::remove_file(&status);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{cmd}: {err}"
        );
        // Ended by SIGPIPE (128 + 13), as C tools end: quietly, without a panic (101).
        assert_eq!(written.trim(), "141", "{cmd}: {err}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn without_privileges_the_tools_say_permission_denied_and_change_nothing() {
    if !is_root() {
        xlvs_tests::skip("needs root (to drop to another user)");
        return;
    }
    let pins = Pins::new("perm");
    // The tables exist (made as root), with one service.
    let (code, err) = shell("ipvsadm -A -t 198.18.0.1:80 -s rr", &pins.0);
    assert_eq!(code, Some(0), "{err}");
    let nobody = |cmd: &str| {
        shell(
            &format!("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {cmd}"),
            &pins.0,
        )
    };
    // ipvsadm 1.31 as a user on a kernel with IPVS (recorded on the oracle guest), for every
    // command: it opens IPVS before it reads its arguments.
    let ipvsadm_says = "Can't initialize ipvs: Permission denied (you must be root)\n\
                        Are you sure that IP Virtual Server is built in the kernel or as module?\n";
    for cmd in [
        "ipvsadm -Ln",
        "ipvsadm -A -t 198.18.0.2:80",
        "ipvsadm -D -t 198.18.0.1:80",
        "ipvsadm -S",
        "ipvsadm --version",
        "ipvsadm --start-daemon master",
    ] {
        assert_eq!(nobody(cmd), (Some(2), ipvsadm_says.to_string()), "{cmd}");
    }
    for cmd in [
        "xlvs status",
        "xlvs attach lo",
        "xlvs set toa 0",
        "xlvs unload",
    ] {
        let (code, err) = nobody(cmd);
        assert_eq!(code, Some(1), "{cmd}: {err}");
        assert!(err.starts_with("xlvs: Permission denied"), "{cmd}: {err}");
    }
    // Nothing changed.
    let (code, err) = shell(
        "test \"$(ipvsadm -S -n)\" = '-A -t 198.18.0.1:80 -s rr'",
        &pins.0,
    );
    assert_eq!(code, Some(0), "{err}");
}
