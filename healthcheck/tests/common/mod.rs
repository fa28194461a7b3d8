//! Test bed for the checkers: namespace `lb` (198.18.60.1, runs
//! xlvs-healthcheck) joined by a veth to namespace `rs` (198.18.60.2-6,
//! runs the real servers). Everything is removed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};

pub const LB: &str = "198.18.60.1";
pub const RS: [&str; 5] = [
    "198.18.60.2",
    "198.18.60.3",
    "198.18.60.4",
    "198.18.60.5",
    "198.18.60.6",
];

/// Skips (returns None) when not root: namespaces need it.
pub fn bed(tag: &str) -> Option<Bed> {
    if !is_root() {
        xlvs_tests::skip("needs root for network namespaces");
        return None;
    }
    let p = unique_prefix(tag);
    let lb = Netns::new(&format!("{p}lb")).expect("netns lb");
    let rs = Netns::new(&format!("{p}rs")).expect("netns rs");
    veth(&lb, "hc0", &rs, "hc1").expect("veth");
    lb.ip(&["addr", "add", &format!("{LB}/24"), "dev", "hc0"])
        .unwrap();
    for a in RS {
        rs.ip(&["addr", "add", &format!("{a}/24"), "dev", "hc1"])
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("hc-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    Some(Bed {
        lb,
        rs,
        dir,
        python: python(),
    })
}

/// The real python binary (not a pyenv shim), so a kill reaches it.
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct Bed {
    pub lb: Netns,
    pub rs: Netns,
    pub dir: PathBuf,
    pub python: String,
}

/// A process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Bed {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        // Write then rename, so a reader never sees a half-written file.
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }

    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(name, text);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// Runs a command in the `rs` namespace.
    pub fn in_rs(&self, cmd: &str, args: &[&str]) -> Proc {
        let child = self
            .rs
            .command(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in rs");
        Proc(child)
    }

    /// python3 -m http.server on every rs address.
    pub fn http_server(&self, port: u16, dir: &Path) -> Proc {
        let p = self.in_rs(
            &self.python.clone(),
            &[
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "0.0.0.0",
                "--directory",
                dir.to_str().unwrap(),
            ],
        );
        self.wait_tcp(RS[0], port);
        p
    }

    pub fn backend(&self, args: &[&str]) -> Proc {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/backend.py");
        let mut a = vec![script];
        a.extend_from_slice(args);
        self.in_rs(&self.python.clone(), &a)
    }

    /// Waits until ip:port accepts TCP connections (seen from `lb`).
    pub fn wait_tcp(&self, ip: &str, port: u16) {
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let h = self.lb.run_in(move || {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        assert!(h.join().unwrap().unwrap(), "{addr} never listened");
    }

    /// Starts xlvs-healthcheck in `lb` on this configuration text.
    pub fn checker(&self, conf: &str) -> Checker {
        let path = self.write("keepalived.conf", conf);
        let mut child = self
            .lb
            .command(env!("CARGO_BIN_EXE_xlvs-healthcheck"))
            .args(["-f", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xlvs-healthcheck");
        let out = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                eprintln!("  | {line}");
                l2.lock().unwrap().push((Instant::now(), line));
            }
        });
        Checker {
            proc: Proc(child),
            lines,
            conf: path,
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Checker {
    pub proc: Proc,
    pub lines: Arc<Mutex<Vec<(Instant, String)>>>,
    pub conf: PathBuf,
}

impl Checker {
    pub fn mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Output lines (without the time stamp) from index `from`.
    pub fn since(&self, from: usize) -> Vec<String> {
        self.lines.lock().unwrap()[from..]
            .iter()
            .map(|(_, l)| strip(l).to_string())
            .collect()
    }

    /// Waits for a line after `from` containing every one of `words`;
    /// returns when it was printed.
    pub fn wait(&self, from: usize, words: &[&str], timeout: Duration) -> Option<Instant> {
        let t0 = Instant::now();
        loop {
            {
                let l = self.lines.lock().unwrap();
                if let Some((t, _)) = l[from.min(l.len())..]
                    .iter()
                    .find(|(_, s)| words.iter().all(|w| s.contains(w)))
                {
                    return Some(*t);
                }
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like `wait` but panics with the output when the line does not come.
    pub fn expect(&self, from: usize, words: &[&str], timeout: Duration) -> Instant {
        self.wait(from, words, timeout).unwrap_or_else(|| {
            panic!(
                "no line with {words:?} within {timeout:?}; output since:\n{}",
                self.since(from).join("\n")
            )
        })
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.proc.0.id() as i32), sig).unwrap();
    }
}

/// Drops the leading time stamp.
fn strip(l: &str) -> &str {
    l.split_once(' ').map(|x| x.1).unwrap_or(l)
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
