//! A loaded (not attached) data plane with its own pin directory, run through
//! BPF_PROG_TEST_RUN from inside its own namespace: the bed of the packet-path tests. Everything
//! (pins, namespace) is removed on drop.

use std::path::PathBuf;

use dataplane::testrun::Runner;
use dataplane::{Dataplane, Options};

use crate::netns::{Netns, enter, fib_namespace, is_root, unique_prefix};
use crate::packet::{Decoded, Frame, decode};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

pub struct TestBed {
    pub opts: Options,
    pub dp: Dataplane,
    pub runner: Runner,
    _ns: Netns,
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let _ = dataplane::unload(&self.opts);
    }
}

impl TestBed {
    /// `None` (test skipped, said on stderr) without root. With `routed`, the namespace's FIB
    /// resolves the next hops of `netns::fib_namespace`. The calling thread enters the namespace.
    pub fn new(max_conns: u32, routed: bool) -> Option<TestBed> {
        if !is_root() {
            crate::skip("BPF_PROG_TEST_RUN needs root");
            return None;
        }
        let prefix = unique_prefix("xf");
        let ns = if routed {
            fib_namespace(&prefix).expect("fib netns").0
        } else {
            Netns::new(&prefix).expect("netns")
        };
        enter(&format!("/run/netns/{prefix}")).expect("setns");
        let opts = Options {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}")),
            max_conns,
        };
        let dp = Dataplane::open(&opts).expect("open data plane");
        let runner = Runner::xlvs(&opts).expect("runner");
        Some(TestBed {
            opts,
            dp,
            runner,
            _ns: ns,
        })
    }

    /// Runs the program on `frame`: (action, output frame).
    pub fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        let r = self.runner.run(frame).expect("test run");
        (r.action, r.packet)
    }

    /// Runs the program on `frame` as it arrives on `b0`, the routed bed's link (FIB lookups
    /// start there): (action, output frame).
    pub fn run_on_b0(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        let r = self.runner.run_on(frame, ifindex_b0()).expect("test run");
        (r.action, r.packet)
    }

    /// Runs the program on `frame`: (action, the output decoded).
    pub fn run_frame(&self, frame: &Frame) -> (u32, Decoded) {
        let (action, out) = self.run(&frame.build());
        (action, decode(&out).expect("decodable output"))
    }

    /// The packet path's counter `index` (an `ebpf_common::counter` constant).
    pub fn counter(&self, index: u32) -> u64 {
        self.dp.counters().expect("counters")[index as usize]
    }

    /// Writes entry `index` of the CONFIG array directly (settings tests need to force).
    pub fn set_config(&self, index: u32, value: u32) {
        self.set_u32_entry(ebpf_common::maps::CONFIG, index, value);
    }

    /// Writes entry `index` of the pinned u32 array `map` directly with bpftool (as another
    /// build, or a lost write, would have left it).
    pub fn set_u32_entry(&self, map: &str, index: u32, value: u32) {
        let path = self.opts.pin_dir.join(map);
        let key = index.to_le_bytes().map(|b| b.to_string());
        let val = value.to_le_bytes().map(|b| b.to_string());
        let mut args = vec![
            "map",
            "update",
            "pinned",
            path.to_str().expect("path"),
            "key",
        ];
        args.extend(key.iter().map(|s| s.as_str()));
        args.push("value");
        args.extend(val.iter().map(|s| s.as_str()));
        let out = crate::netns::run("bpftool", &args).expect("bpftool");
        assert!(out.status.success(), "bpftool: {out:?}");
    }
}

/// The index of `b0`, the routed bed's link, in the calling thread's namespace.
pub fn ifindex_b0() -> u32 {
    dataplane::loader::ifindex("b0").expect("b0")
}
