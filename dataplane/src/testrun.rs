//! Running the XDP program on crafted packets through BPF_PROG_TEST_RUN: the packet path without
//! interfaces, for unit tests and for the ns/packet benchmarks (`cargo xtask bench xdp`).

use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya_obj::programs::XdpAttachType;

use crate::Options;
use crate::error::{Error, Result};

/// One program, ready to be run on packets.
pub enum Runner {
    /// The pinned xlvs program.
    Pinned(Box<Xdp>),
    /// A program of an object loaded for this runner (kept alive with it).
    Loaded(aya::Ebpf, &'static str),
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// XDP action (2 = PASS, 1 = DROP, 3 = TX, 4 = REDIRECT).
    pub action: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
    /// Kernel-measured time per repetition.
    pub duration: Duration,
}

impl Runner {
    /// The pinned xlvs program of `opts` (loaded if needed), working on the pinned tables.
    pub fn xlvs(opts: &Options) -> Result<Runner> {
        crate::loader::ensure_loaded(opts)?;
        let prog = Xdp::from_pin(
            opts.pin_dir.join(ebpf_common::PIN_PROG),
            XdpAttachType::Interface,
        )
        .map_err(|e| Error::Unavailable(format!("cannot open the pinned program: {e}")))?;
        Ok(Runner::Pinned(Box::new(prog)))
    }

    /// The trivial XDP_PASS program from the same object (the benchmark floor). Its maps are the
    /// pinned ones of `opts`, so nothing new is created.
    pub fn trivial(opts: &Options) -> Result<Runner> {
        crate::loader::ensure_loaded(opts)?;
        let mut ebpf = crate::loader::load_object(opts)?;
        let prog: &mut Xdp = ebpf
            .program_mut("xlvs_pass")
            .ok_or_else(|| Error::Unavailable("object has no xlvs_pass program".into()))?
            .try_into()
            .map_err(|e| Error::Unavailable(format!("xlvs_pass: {e}")))?;
        prog.load()
            .map_err(|e| Error::Unavailable(format!("cannot load xlvs_pass: {e}")))?;
        Ok(Runner::Loaded(ebpf, "xlvs_pass"))
    }

    fn prog(&self) -> Result<&Xdp> {
        match self {
            Runner::Pinned(p) => Ok(p),
            Runner::Loaded(ebpf, name) => ebpf
                .program(name)
                .ok_or_else(|| Error::Unavailable(format!("no program {name}")))?
                .try_into()
                .map_err(|e| Error::Unavailable(format!("{name}: {e}"))),
        }
    }

    /// Runs the program once on `packet` (received on the loopback device, as test runs are).
    pub fn run(&self, packet: &[u8]) -> Result<RunResult> {
        self.run_ctx(packet, None)
    }

    /// Runs the program once on `packet` as if it arrived on interface `ifindex` (of the calling
    /// thread's network namespace), so FIB lookups start from there.
    pub fn run_on(&self, packet: &[u8], ifindex: u32) -> Result<RunResult> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
        let md: [u32; 6] = [0, packet.len() as u32, 0, ifindex, 0, 0];
        let ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.run_ctx(packet, Some(&ctx))
    }

    fn run_ctx(&self, packet: &[u8], ctx: Option<&[u8]>) -> Result<RunResult> {
        let mut out = vec![0u8; packet.len() + 256];
        let r = self
            .prog()?
            .test_run(TestRunOptions {
                data_in: Some(packet),
                data_out: Some(&mut out),
                ctx_in: ctx,
                repeat: 1,
                ..TestRunOptions::new()
            })
            .map_err(|e| Error::Unavailable(format!("BPF_PROG_TEST_RUN failed: {e}")))?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult {
            action: r.return_value,
            packet: out,
            duration: r.duration,
        })
    }
}
