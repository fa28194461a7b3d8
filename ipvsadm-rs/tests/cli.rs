//! The `ipvsadm` binary end to end against a real (loaded, unattached) data plane: real
//! artefacts restored and saved back, exact messages and exit codes, -R failure semantics, the
//! fork flavours and the save/restore entry points. Needs root (BPF); skips otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A private pin directory (removed on drop) and ways to run ipvsadm against it.
struct Ipvs {
    pin: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ipvs {
    fn new() -> Option<Ipvs> {
        if !xlvs_tests::require_root() {
            return None;
        }
        let pin = PathBuf::from(format!(
            "/sys/fs/bpf/xlvs-ipvsadm{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        Some(Ipvs { pin })
    }

    fn run_bin(&self, bin: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        let mut c = Command::new(bin);
        c.args(args)
            .env("XLVS_PIN_DIR", &self.pin)
            .env("XLVS_MAX_CONNS", "1024")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn ipvsadm");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn run(&self, args: &str) -> Out {
        let a: Vec<&str> = args.split_whitespace().collect();
        self.run_bin(Path::new(env!("CARGO_BIN_EXE_ipvsadm")), &a, "", &[])
    }

    fn restore(&self, text: &str) -> Out {
        self.run_bin(Path::new(env!("CARGO_BIN_EXE_ipvsadm")), &["-R"], text, &[])
    }
}

impl Drop for Ipvs {
    fn drop(&mut self) {
        let _ = dataplane::unload(&dataplane::Options {
            pin_dir: self.pin.clone(),
            max_conns: 1024,
        });
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../compat-fixtures/ipvsadm")
            .join(name),
    )
    .unwrap()
}

#[test]
fn the_man_page_example_restores_and_saves_back() {
    let Some(ipvs) = Ipvs::new() else { return };
    let rules = fixture("ipvsadm-1.31.8.example1.restore");
    let r = ipvs.restore(&rules);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // ipvsadm -S writes the weight it applied (the default 1).
    let expected: String = rules
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with("-a") {
                format!("{l} -w 1\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let s = ipvs.run("-S -n");
    assert_eq!(s.stdout, expected);
    // ... and that output is itself accepted by -R (after a flush), giving the same tables.
    assert_eq!(ipvs.run("-C").code, 0);
    assert_eq!(ipvs.restore(&s.stdout).code, 0);
    assert_eq!(ipvs.run("-S -n").stdout, expected);
}

#[test]
fn a_real_save_file_round_trips_line_for_line() {
    let Some(ipvs) = Ipvs::new() else { return };
    let rules = fixture("big_brother.ipvs_spec.save-n.rules");
    assert_eq!(ipvs.restore(&rules).code, 0);
    let out = ipvs.run("-S -n").stdout;
    // The capture came from an ipvsadm older than tunnel types: 1.31 adds `--tun-type ipip` to
    // tunnel reals, and sorts services (fwmark 1, 2, 3).
    let mut want: Vec<String> = rules
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with("-a") {
                format!("{l} --tun-type ipip")
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut got: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(got.first().map(String::as_str), Some("-A -f 1 -s wrr"));
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn listings_are_byte_exact() {
    let Some(ipvs) = Ipvs::new() else { return };
    let r = ipvs.restore(
        "-A -t 198.18.100.1:80 -s wrr -p 600 -M 255.255.255.0\n\
         -a -t 198.18.100.1:80 -r 198.18.2.2:8080 -m -w 3\n\
         -a -t 198.18.100.1:80 -r 198.18.2.10 -g -w 0\n\
         -A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port\n\
         -a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -m\n\
         -A -f 7 -s rr\n",
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let l = ipvs.run("-Ln");
    let want = "IP Virtual Server version 1.2.1 (size=1024)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.18.100.1:80 wrr persistent 600 mask 255.255.255.0\n  -> 198.18.2.2:8080              Masq    3      0          0         \n  -> 198.18.2.10:80               Route   0      0          0         \n\
UDP  [2001:db8::1]:53 sh (sh-fallback,sh-port)\n  -> [2001:db8::2]:53             Masq    1      0          0         \n\
FWM  7 rr\n";
    assert_eq!(l.stdout, want);
    let t = ipvs.run("-L -n --thresholds -t 198.18.100.1:80");
    assert_eq!(
        t.stdout,
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n\
TCP  198.18.100.1:80 wrr persistent 600 mask 255.255.255.0\n  \
-> 198.18.2.2:8080              0          0          0          0         \n  \
-> 198.18.2.10:80               0          0          0          0         \n"
    );
    assert_eq!(
        ipvs.run("-Ln --timeout").stdout,
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(ipvs.run("--set 1000 20 30").code, 0);
    assert_eq!(
        ipvs.run("-Ln --timeout").stdout,
        "Timeout (tcp tcpfin udp): 1000 20 30\n"
    );
    let c = ipvs.run("-Lnc");
    assert_eq!(
        c.stdout,
        "IPVS connection entries\npro expire state       source             virtual            destination\n"
    );
}

#[test]
fn errors_and_exit_codes_are_ipvsadms() {
    let Some(ipvs) = Ipvs::new() else { return };
    let cases: &[(&str, i32, &str)] = &[
        (
            "-a -t 198.18.0.1:80 -r 198.18.0.2",
            255,
            "Service not defined\n",
        ),
        ("-D -t 198.18.0.1:80", 255, "No such service\n"),
        (
            "-A -t 198.18.0.1:0",
            2,
            "Zero port specified for non-persistent service\n",
        ),
        (
            "-A -t 198.18.0.1:80 -s nosuch",
            255,
            "Scheduler or persistence engine not found\n",
        ),
        (
            "-A -u 198.18.0.1:53 -w 1",
            2,
            "Illegal 'weight' option with the 'add-service' command\n",
        ),
        (
            "-nL",
            255,
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n",
        ),
        ("-L --nonsense", 255, "--nonsense: unknown option\n"),
        (
            "-A -t 198.18.0.1:80 -s rr -s rr",
            2,
            "multiple 'scheduler' options specified\n",
        ),
        ("--set 1 2", 2, "--set option requires 3 timeout values\n"),
        (
            "-A -t 1234 ",
            2,
            "illegal virtual server address[:port] specified\n",
        ),
        (
            "-A -t 198.18.0.1:80 -o",
            2,
            "One-Packet Scheduling is only for UDP virtual services\n",
        ),
    ];
    for (args, code, stderr) in cases {
        let o = ipvs.run(args);
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (*code, *stderr),
            "ipvsadm {args}"
        );
    }
    assert_eq!(ipvs.run("-A -t 198.18.0.1:80 -s rr").code, 0);
    let o = ipvs.run("-A -t 198.18.0.1:80 -s rr");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Service already exists\n")
    );
    let o = ipvs.run("-a -t 198.18.0.1:80 -r [2001:db8::2]:80 -m");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            2,
            "Different address family is allowed only for tunneling servers\n"
        )
    );
    // A failed command changed nothing.
    assert_eq!(ipvs.run("-S -n").stdout, "-A -t 198.18.0.1:80 -s rr\n");
    // Recorded from ipvsadm 1.31 on kernel 6.1: other families only for tunnels, fwmark
    // services (IPv4 unless -6) included, also when -e changes the method.
    for (args, code) in [
        ("-a -t 198.18.0.1:80 -r [2001:db8::1]:80 -i", 0),
        (
            "-a -t 198.18.0.1:80 -r [2001:db8::5]:80 -i --tun-type gre --tun-csum",
            0,
        ),
        ("-e -t 198.18.0.1:80 -r [2001:db8::1]:80 -g", 2),
        ("-A -f 7 -s rr", 0),
        ("-a -f 7 -r [2001:db8::20]:0 -i", 0),
        ("-a -f 7 -r [2001:db8::21]:0 -g", 2),
        ("-A -f 8 -6 -s rr", 0),
        ("-a -f 8 -6 -r 198.18.1.31 -m", 2),
    ] {
        let o = ipvs.run(args);
        assert_eq!(o.code, code, "ipvsadm {args}: {}", o.stderr);
        if code == 2 {
            assert_eq!(
                o.stderr,
                "Different address family is allowed only for tunneling servers\n"
            );
        }
    }
    // Deleting is not checked for the family (as ipvsadm 1.31).
    for args in [
        "-d -t 198.18.0.1:80 -r [2001:db8::1]:80",
        "-d -t 198.18.0.1:80 -r [2001:db8::5]:80",
        "-d -f 7 -r [2001:db8::20]:0",
        "-D -f 7",
        "-D -f 8 -6",
    ] {
        assert_eq!(ipvs.run(args).code, 0, "ipvsadm {args}");
    }
    let o = ipvs.run("-d -t 198.18.0.1:80 -r [2001:db8::7]:80");
    assert_eq!((o.code, o.stderr.as_str()), (255, "No such destination\n"));
    let v = ipvs.run("-v");
    assert_eq!(
        v.stdout,
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
    );
}

#[test]
fn restore_stops_on_syntax_errors_and_goes_on_after_operation_failures() {
    let Some(ipvs) = Ipvs::new() else { return };
    let r = ipvs.restore(
        "-A -t 198.18.0.1:80 -s rr\n\
         ipvsadm -a -t 198.18.0.9:80 -r 198.18.0.2 -m\n\
         -A -t 198.18.0.2:80 -s rr\n",
    );
    assert_eq!(r.stderr, "Service not defined\n");
    assert_eq!(r.code, 0, "the status is the last line's");
    let r = ipvs.restore(
        "-A -t 198.18.0.3:80 -s rr\n-A -t 198.18.0.4:80 -w 1\n-A -t 198.18.0.5:80 -s rr\n",
    );
    assert_eq!(r.code, 2);
    let saved = ipvs.run("-S -n").stdout;
    assert!(
        saved.contains("198.18.0.3:80"),
        "earlier lines stay applied: {saved}"
    );
    assert!(
        !saved.contains("198.18.0.5:80"),
        "stops at the failing line: {saved}"
    );
}

#[test]
fn fork_flavour_fullnat_local_addresses_and_save_restore_names() {
    let Some(ipvs) = Ipvs::new() else { return };
    let bin = Path::new(env!("CARGO_BIN_EXE_ipvsadm"));
    let ali = [("XLVS_IPVSADM_FLAVOR", "alibaba")];
    let run = |a: &str| {
        let v: Vec<&str> = a.split_whitespace().collect();
        ipvs.run_bin(bin, &v, "", &ali)
    };
    assert_eq!(run("-A -t 198.18.100.1:80 -s rr -j enable").code, 0);
    assert_eq!(run("-a -t 198.18.100.1:80 -r 198.18.2.2:80 -b").code, 0);
    assert_eq!(run("-P -t 198.18.100.1:80 -z 198.18.5.1 -F eth1").code, 0);
    let o = run("-P -t 198.18.100.1:80 -z 198.18.5.1");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (255, "Local address already exists\n")
    );
    let l = run("-Ln");
    assert!(
        l.stdout.contains("TCP  198.18.100.1:80 rr synproxy\n"),
        "{}",
        l.stdout
    );
    assert!(
        l.stdout
            .contains("  -> 198.18.2.2:80                FullNat 1      0          0         \n")
    );
    let g = run("-G");
    assert_eq!(
        g.stdout,
        "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n\
198.18.100.1:80      1        \n                              198.18.5.1           0          0         \n"
    );
    let s = run("-S -n").stdout;
    assert_eq!(
        s,
        "-A -t 198.18.100.1:80 -s rr -j enable\n-a -t 198.18.100.1:80 -r 198.18.2.2:80 -b -w 1\n-P -t 198.18.100.1:80 -z 198.18.5.1\n"
    );
    // Upstream flavour: -b is --sched-flags.
    let o = ipvs.run("-a -t 198.18.100.1:80 -r 198.18.2.3:80 -b");
    assert_eq!(o.code, 255, "{}", o.stderr);

    // ipvsadm-save / ipvsadm-restore are the same binary under other names.
    let dir = std::env::temp_dir().join(format!("xlvs-ipvsadm-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = dir.join("ipvsadm-save");
    let restore = dir.join("ipvsadm-restore");
    let _ = std::fs::remove_file(&save);
    let _ = std::fs::remove_file(&restore);
    std::os::unix::fs::symlink(bin, &save).unwrap();
    std::os::unix::fs::symlink(bin, &restore).unwrap();
    let dump = ipvs.run_bin(&save, &["-n"], "", &ali).stdout;
    assert_eq!(dump, s);
    let r = ipvs.run_bin(
        &restore,
        &[],
        "# a comment line\n-A -t 198.18.100.9:80 -s wrr\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        ipvs.run("-S -n").stdout,
        "-A -t 198.18.100.9:80 -s wrr\n",
        "flushed first"
    );
    assert_eq!(ipvs.run_bin(&save, &["-x"], "", &[]).code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `tests/golden/SCRIPT.sh` with this crate's `ipvsadm` and compares its output with what
/// real ipvsadm 1.31 printed on kernel IPVS (`tests/golden/SCRIPT.ipvs-1.31.out`), byte for
/// byte; the only normalised field is the connection-table size in the version header
/// (`size=4096` in kernel IPVS, the connection-table capacity in xlvs).
fn replay_oracle_script(script: &str) {
    let Some(ipvs) = Ipvs::new() else { return };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    // The script calls `ipvsadm` from PATH: ours, under that name.
    let bin = std::env::temp_dir().join(format!("xlvs-oracle-bin-{}-{script}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("ipvsadm");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ipvsadm"), &link).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = ipvs.run_bin(
        Path::new("/bin/sh"),
        &[golden.join(format!("{script}.sh")).to_str().unwrap()],
        "",
        &[("PATH", path.as_str())],
    );
    let _ = std::fs::remove_dir_all(&bin);
    let normalise = |s: &str| {
        s.lines()
            .map(|l| match l.find("(size=") {
                Some(i) => format!("{}(size=N)", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
    };
    // Bytes: the transcripts echo arguments that are not UTF-8.
    let want = String::from_utf8_lossy(
        &std::fs::read(golden.join(format!("{script}.ipvs-1.31.out"))).unwrap(),
    )
    .into_owned();
    let (ours, theirs) = (normalise(&out.stdout), normalise(&want));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            // The command this line belongs to, for the failure message.
            let cmd = ours[..=i]
                .iter()
                .rev()
                .find(|l| l.starts_with("=== "))
                .cloned()
                .unwrap_or_default();
            panic!(
                "{script}: line {} differs from real ipvsadm 1.31 (after `{cmd}`):\n ours:   {a}\n theirs: {b}",
                i + 1
            );
        }
    }
    assert_eq!(ours.len(), theirs.len(), "{script}: output length");
}

#[test]
fn the_oracle_session_matches_real_ipvsadm() {
    replay_oracle_script("session");
}

/// Every real-server command over forwarding method x real port (equal, other, absent) x
/// service kind x family, and two reals on one address with different ports: each command
/// changes exactly the real it names, as on kernel IPVS.
/// ipvsadm reads bytes: a byte that is not UTF-8 fails the line or argument holding it, with
/// 1.31's message, not the whole restore.
#[test]
fn bytes_that_are_not_utf8_fail_only_their_line_as_on_kernel_ipvs() {
    replay_oracle_script("bytes");
}

#[test]
fn real_server_commands_touch_exactly_the_real_they_name_as_on_kernel_ipvs() {
    replay_oracle_script("matrix");
}

/// Migration from kernel IPVS: `ipvsadm-save -n` of a Linux 6.1 director (golden, recorded on
/// the real kernel from `golden/kernel-6.1-save-n.commands`: every forwarding method, tunnel
/// types, schedulers with flags, persistence, fwmark and IPv6 services, port-zero services)
/// restores into xlvs and saves back byte for byte; the same commands run against xlvs save
/// the same text.
#[test]
fn a_kernel_directors_save_restores_identically() {
    let Some(ipvs) = Ipvs::new() else { return };
    let golden = |n: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join(n),
        )
        .unwrap()
    };
    let kernel = golden("kernel-6.1-save-n.txt");
    let r = ipvs.restore(&kernel);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(ipvs.run("-S -n").stdout, kernel);
    assert_eq!(ipvs.run("-C").code, 0);
    for cmd in golden("kernel-6.1-save-n.commands").lines() {
        let args = cmd.strip_prefix("ipvsadm ").unwrap();
        let o = ipvs.run(args);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{cmd}");
    }
    assert_eq!(ipvs.run("-S -n").stdout, kernel);
}

/// Four writer loops on one service, each adding and deleting its own reals (same address as a
/// production real, another port; by command and by `-R`), never touch the two production reals
/// nor each other's: after every round exactly the production reals are listed.
#[test]
fn concurrent_writers_delete_only_the_reals_they_name() {
    let Some(ipvs) = Ipvs::new() else { return };
    let svc = "-t 198.18.0.100:80";
    for cmd in [
        format!("-A {svc} -s rr"),
        format!("-a {svc} -r 198.18.1.11:80 -g"),
        format!("-a {svc} -r 198.18.1.12:80 -g"),
    ] {
        assert_eq!(ipvs.run(&cmd).code, 0, "{cmd}");
    }
    let production = |out: &str| {
        let mut reals: Vec<String> = out
            .lines()
            .filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect();
        reals.sort();
        reals
    };
    let ipvs = &ipvs;
    std::thread::scope(|s| {
        for w in 0..4u16 {
            s.spawn(move || {
                for round in 0..15u16 {
                    let port = 8081 + w;
                    let real = format!("198.18.1.{}:{port}", 11 + round % 2);
                    let by_restore = round % 3 == 0;
                    let add = ipvs.run(&format!("-a {svc} -r {real} -m"));
                    assert_eq!(add.code, 0, "writer {w} add {real}: {}", add.stderr);
                    let del = if by_restore {
                        ipvs.restore(&format!("-d {svc} -r {real}\n"))
                    } else {
                        ipvs.run(&format!("-d {svc} -r {real}"))
                    };
                    assert_eq!(del.code, 0, "writer {w} delete {real}: {}", del.stderr);
                }
            });
        }
    });
    let listed = ipvs.run("-Ln");
    assert_eq!(
        production(&listed.stdout),
        ["198.18.1.11:80", "198.18.1.12:80"],
        "{}",
        listed.stdout
    );
}
