//! Loading the XDP program, pinning it and its maps, and attaching it to interfaces.
//!
//! Everything lives under the pin directory (default /sys/fs/bpf/xlvs): the maps by name, the
//! program as `prog_xlvs`, its tail-call array as `JUMP_<program id>`, and one bpf_link per
//! attached interface under `links/IFNAME`. Pins keep the program attached and the tables alive
//! after the process that made them exits; a later process adopts them.
//!
//! Each loaded version of the program has its own tail-call array, filled with that version's
//! stages: a reload swaps the main program on every interface while packets in flight finish
//! their whole path (main program, new-connection stage, scheduler, forwarding) in the version
//! they started in, with the hand-off state between stages of that version. (One shared array,
//! refilled stage by stage, sent a packet from an old stage into a new one that read what the
//! old one had not written: connections opened during a reload went to two different reals.)

use std::fs;
use std::path::{Path, PathBuf};

use aya::EbpfLoader;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{Xdp, xdp::XdpMode};
use aya_obj::programs::XdpAttachType;
use ebpf_common::{PIN_LINKS_DIR, PIN_PROG, maps as names};

use crate::Options;
use crate::error::{Error, Result};
use crate::maps::Maps;

/// The XDP object built by build.rs.
static PROGRAM_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlvs-xdp"));
/// Name of the XDP function in the object.
const PROGRAM_NAME: &str = ebpf_common::PROG_MAIN;
/// bpffs magic (statfs f_type).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

fn prog_pin(dir: &Path) -> PathBuf {
    dir.join(PIN_PROG)
}

fn link_pin(dir: &Path, ifname: &str) -> PathBuf {
    dir.join(PIN_LINKS_DIR).join(ifname)
}

/// True when the program and every map are pinned under `dir`.
pub fn is_loaded(dir: &Path) -> bool {
    prog_pin(dir).exists() && names::ALL.iter().all(|m| dir.join(m).exists())
}

/// The pins of tail-call arrays under `dir` (this build's `JUMP_<id>` and an older build's
/// `JUMP`).
fn jump_pins(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name == names::JUMP || name.starts_with(names::JUMP_PIN_PREFIX)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Makes sure the program and its maps exist and are pinned, loading them if needed.
/// Existing pinned maps are adopted (their entries, sessions included, are kept).
pub fn ensure_loaded(opts: &Options) -> Result<()> {
    let dir = &opts.pin_dir;
    if is_loaded(dir) {
        return Ok(());
    }
    check_privileges()?;
    check_bpffs(dir)?;
    let created = !dir.exists();
    fs::create_dir_all(dir.join(PIN_LINKS_DIR))
        .map_err(|e| Error::map(format!("cannot create {}", dir.display()), e))?;
    // Two first users at once (a daemon starting while `ipvsadm` lists) must not both pin:
    // the second waits for the first and adopts what it made.
    let _lock = crate::lock::WriteLock::acquire(dir)?;
    if is_loaded(dir) {
        return Ok(());
    }
    let result = load_and_pin(opts);
    if result.is_err() && created {
        // Leave nothing half-made: pins of maps already created go with the directory.
        let _ = unload(opts);
    }
    result
}

fn load_and_pin(opts: &Options) -> Result<()> {
    let dir = &opts.pin_dir;
    let mut ebpf = load_object(opts)?;
    let mut maps = Maps::open(dir)?;
    crate::addr_filter::ensure_ready(&mut maps)?;
    crate::nat_owners::claim_all(&mut maps)?;
    let prog = load_programs(&mut ebpf)?;
    let pin = prog_pin(dir);
    if !pin.exists() {
        prog.pin(&pin)
            .map_err(|e| Error::Unavailable(format!("cannot pin {}: {e}", pin.display())))?;
        // Tail-call arrays of a program no longer pinned are nobody's.
        for stale in jump_pins(dir) {
            let _ = fs::remove_file(stale);
        }
        pin_jump(&mut ebpf, dir)?;
    }
    Ok(())
}

/// Pins the loaded version's tail-call array as `JUMP_<main program id>`: a pin keeps its
/// entries (the kernel empties a program array when the last user-space reference goes).
fn pin_jump(ebpf: &mut aya::Ebpf, dir: &Path) -> Result<PathBuf> {
    let id = main_program(ebpf)?
        .info()
        .map_err(|e| Error::Unavailable(format!("cannot read program info: {e}")))?
        .id();
    let path = jump_pin(dir, id);
    let map = ebpf
        .map_mut(names::JUMP)
        .ok_or_else(|| Error::Unavailable("object has no JUMP map".into()))?;
    let data = match map {
        aya::maps::Map::ProgramArray(d) => d,
        _ => return Err(Error::Unavailable("JUMP is not a program array".into())),
    };
    data.pin(&path)
        .map_err(|e| Error::Unavailable(format!("cannot pin {}: {e}", path.display())))?;
    Ok(path)
}

/// Where the tail-call array of the program with id `prog_id` is pinned.
fn jump_pin(dir: &Path, prog_id: u32) -> PathBuf {
    dir.join(format!("{}{prog_id}", names::JUMP_PIN_PREFIX))
}

fn main_program(ebpf: &mut aya::Ebpf) -> Result<&mut Xdp> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or_else(|| Error::Unavailable("object has no xlvs program".into()))?
        .try_into()
        .map_err(|e| Error::Unavailable(format!("xlvs is not an XDP program: {e}")))
}

/// Loads the object with its maps pinned under the pin directory (existing pins are adopted).
pub(crate) fn load_object(opts: &Options) -> Result<aya::Ebpf> {
    if PROGRAM_OBJECT.is_empty() {
        return Err(Error::Unavailable(
            "this build has no XDP program (built with XLVS_EBPF_SKIP=1)".into(),
        ));
    }
    let kept_config = crate::pins::reconcile(&opts.pin_dir)?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(&opts.pin_dir)
        // Two entries per connection, one per direction, and the LRU's headroom.
        .map_max_entries(
            names::CONNS,
            opts.max_conns
                .saturating_mul(2)
                .saturating_add(crate::fill::lru_headroom()),
        )
        .load(PROGRAM_OBJECT)
        .map_err(|e| load_error(format!("cannot load the XDP program: {e}"), &e))?;
    crate::pins::restore_config(&mut ebpf, &kept_config)?;
    Ok(ebpf)
}

/// Loads the object's programs into the kernel (tail-call targets installed) and returns the main
/// one.
fn load_programs(ebpf: &mut aya::Ebpf) -> Result<&mut Xdp> {
    load_retrying(main_program(ebpf)?)
        .map_err(|e| Error::Unavailable(format!("the kernel rejected the XDP program: {e}")))?;
    install_tail_calls(ebpf)?;
    main_program(ebpf)
}

/// Loads a program, again when the verifier gave up with EAGAIN: it does when a signal arrives
/// during a long verification (seen with busy test processes), which says nothing about the
/// program.
fn load_retrying(prog: &mut Xdp) -> std::result::Result<(), aya::programs::ProgramError> {
    let mut tries = 0;
    loop {
        match prog.load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && tries < 5 =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Loads the programs the main one tail-calls and puts them in this version's JUMP array, where
/// the kernel keeps them alive.
fn install_tail_calls(ebpf: &mut aya::Ebpf) -> Result<()> {
    for stage in ebpf_common::Stage::ALL {
        let (slot, name) = (stage.slot(), stage.name());
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| Error::Unavailable(format!("object has no {name} program")))?
            .try_into()
            .map_err(|e| Error::Unavailable(format!("{name}: {e}")))?;
        // The main program (a target too, for SYNPROXY) is already loaded.
        if prog.fd().is_err() {
            load_retrying(prog)
                .map_err(|e| Error::Unavailable(format!("the kernel rejected {name}: {e}")))?;
        }
        let fd = prog
            .fd()
            .map_err(|e| Error::Unavailable(format!("{name}: {e}")))?
            .try_clone()
            .map_err(|e| Error::map(format!("dup {name} fd"), e))?;
        let map = ebpf
            .map_mut(names::JUMP)
            .ok_or_else(|| Error::Unavailable("object has no JUMP map".into()))?;
        let mut jump = aya::maps::ProgramArray::try_from(map)
            .map_err(|e| Error::Unavailable(format!("JUMP map: {e}")))?;
        jump.set(slot, &fd, 0)
            .map_err(|e| Error::Unavailable(format!("cannot install {name}: {e}")))?;
    }
    Ok(())
}

/// The error with its causes (aya's Display omits the errno that says what went wrong).
fn load_error(text: String, e: &aya::EbpfError) -> Error {
    let mut msg = text;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::Unavailable(msg)
}

/// Whether this process may load and use the data plane: CAP_NET_ADMIN and CAP_BPF +
/// CAP_PERFMON (or CAP_SYS_ADMIN), as root has them. (`None` when it cannot tell.)
pub fn has_privileges() -> Option<bool> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())?;
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    Some(has(CAP_NET_ADMIN) && (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))))
}

/// Loading XDP needs CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON (or CAP_SYS_ADMIN): say so up front
/// instead of failing halfway through map creation.
fn check_privileges() -> Result<()> {
    if has_privileges() == Some(false) {
        return Err(Error::Unavailable(
            "Permission denied: loading the XDP data plane needs root \
             (CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)"
                .into(),
        ));
    }
    Ok(())
}

/// Fails with a clear message when `dir` is not on a mounted bpffs. Like bpftool, mounts bpffs on
/// /sys/fs/bpf first when the directory is below it and nothing is mounted there yet.
fn check_bpffs(dir: &Path) -> Result<()> {
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root) && root.is_dir() {
        let _ = nix::mount::mount(
            Some("bpf"),
            root,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    if !is_bpffs(&probe) {
        return Err(Error::Unavailable(format!(
            "{} is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf; inside `ip netns exec` \
             use `nsenter --net=...` instead, which keeps /sys/fs/bpf)",
            probe.display()
        )));
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|st| st.filesystem_type().0 == BPF_FS_MAGIC)
}

/// The index of interface `name` in the current network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// Attaches the (loaded once) program to each interface. All names are checked first; if any
/// attachment fails, the ones made by this call are undone. Already attached interfaces are kept.
/// Returns the interfaces newly attached.
pub fn attach(opts: &Options, ifnames: &[String], mode: XdpMode) -> Result<Vec<String>> {
    let missing: Vec<&str> = ifnames
        .iter()
        .filter(|n| ifindex(n).is_none())
        .map(|s| s.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Unavailable(format!(
            "no such interface: {}",
            missing.join(", ")
        )));
    }
    ensure_loaded(opts)?;
    let dir = &opts.pin_dir;
    let mut prog = Xdp::from_pin(prog_pin(dir), XdpAttachType::Interface)
        .map_err(|e| Error::Unavailable(format!("cannot open the pinned program: {e}")))?;
    let mut maps = Maps::open(dir)?;
    let mut done: Vec<String> = Vec::new();
    for name in ifnames {
        let pin = link_pin(dir, name);
        if pin.exists() {
            continue;
        }
        let idx = ifindex(name).unwrap_or(0);
        let result = (|| -> Result<()> {
            if crate::netlink::is_veth(idx).unwrap_or(false) {
                // A veth's XDP_TX frames are not reliably delivered to its peer (see
                // `config::TX_VIA_DEVMAP`); once set it stays, for every interface.
                maps.config
                    .set(ebpf_common::config::TX_VIA_DEVMAP, 1, 0)
                    .map_err(|e| crate::maps::err("write CONFIG", e))?;
            }
            let id = prog
                .attach_to_if_index(idx, mode)
                .map_err(|e| Error::Unavailable(format!("cannot attach to {name}: {e}")))?;
            let link = prog
                .take_link(id)
                .map_err(|e| Error::Unavailable(format!("cannot take link of {name}: {e}")))?;
            let fd_link: FdLink = link.try_into().map_err(|e| {
                Error::Unavailable(format!(
                    "{name}: the kernel attached without a bpf_link, cannot keep it attached: {e}"
                ))
            })?;
            fd_link.pin(&pin).map_err(|e| {
                Error::Unavailable(format!("cannot pin link {}: {e}", pin.display()))
            })?;
            maps.tx_ports
                .insert(idx, idx, None, 0)
                .map_err(|e| Error::Unavailable(format!("cannot add {name} to TX_PORTS: {e}")))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = detach(opts, &done);
            return Err(e);
        }
        done.push(name.clone());
    }
    Ok(done)
}

/// Detaches from each named interface (all attached ones when `ifnames` is empty).
/// Returns the interfaces detached.
pub fn detach(opts: &Options, ifnames: &[String]) -> Result<Vec<String>> {
    let dir = &opts.pin_dir;
    let names: Vec<String> = if ifnames.is_empty() {
        attached(dir)
    } else {
        ifnames.to_vec()
    };
    let mut maps = Maps::open(dir).ok();
    let mut done = Vec::new();
    for name in names {
        let pin = link_pin(dir, &name);
        if !pin.exists() {
            return Err(Error::Unavailable(format!(
                "xlvs is not attached to {name}"
            )));
        }
        let link = PinnedLink::from_pin(&pin)
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", pin.display())))?;
        // Dropping the last reference to the link detaches the program.
        drop(
            link.unpin()
                .map_err(|e| Error::map(format!("unpin {}", pin.display()), e))?,
        );
        if let (Some(m), Some(idx)) = (maps.as_mut(), ifindex(&name)) {
            let _ = m.tx_ports.remove(idx);
        }
        done.push(name);
    }
    Ok(done)
}

/// Replaces the running program by this build's, keeping every table and connection: the new
/// program is loaded against the pinned maps with its own tail-call array and swapped into each
/// interface's link atomically (bpf_link_update), so no packet meets a detached interface and
/// every packet runs all its stages in one version. The old version's tail-call array is
/// released once packets still in it are done. Returns the interfaces switched.
pub fn reload(opts: &Options) -> Result<Vec<String>> {
    let dir = &opts.pin_dir;
    // (Not is_loaded: an older build's tables may lack maps this build adds; loading makes them.)
    if !prog_pin(dir).exists() {
        return Err(Error::Unavailable(format!(
            "nothing to reload: {} holds no xlvs program",
            dir.display()
        )));
    }
    check_privileges()?;
    let old_jumps = jump_pins(dir);
    let mut ebpf = load_object(opts)?;
    // Tables of another layout cannot be adopted by this program.
    let mut maps = Maps::open(dir)?;
    crate::addr_filter::ensure_ready(&mut maps)?;
    crate::nat_owners::claim_all(&mut maps)?;
    load_programs(&mut ebpf)?;
    let new_jump = pin_jump(&mut ebpf, dir)?;
    let prog = main_program(&mut ebpf)?;
    let mut switched = Vec::new();
    for name in attached(dir) {
        let pin = link_pin(dir, &name);
        let link = PinnedLink::from_pin(&pin)
            .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", pin.display())))?;
        // Hold the link by fd while its pin is replaced: it stays attached throughout.
        let fd_link = link
            .unpin()
            .map_err(|e| Error::map(format!("unpin {}", pin.display()), e))?;
        let xdp_link = aya::programs::xdp::XdpLink::try_from(fd_link)
            .map_err(|e| Error::Unavailable(format!("{name}: not an XDP link: {e}")))?;
        let id = prog.attach_to_link(xdp_link).map_err(|e| {
            Error::Unavailable(format!("cannot switch {name} to the new program: {e}"))
        })?;
        let fd_link: FdLink = prog
            .take_link(id)
            .map_err(|e| Error::Unavailable(format!("{name}: {e}")))?
            .try_into()
            .map_err(|e| Error::Unavailable(format!("{name}: {e}")))?;
        fd_link
            .pin(&pin)
            .map_err(|e| Error::Unavailable(format!("cannot pin link {}: {e}", pin.display())))?;
        switched.push(name);
    }
    let pin = prog_pin(dir);
    let _ = fs::remove_file(&pin);
    prog.pin(&pin)
        .map_err(|e| Error::Unavailable(format!("cannot pin {}: {e}", pin.display())))?;
    // A packet runs its stages within one NAPI poll (microseconds); this is ample for the
    // last ones that entered the old version to leave it before its stages go.
    std::thread::sleep(std::time::Duration::from_millis(50));
    for old in old_jumps.iter().filter(|p| **p != new_jump) {
        let _ = fs::remove_file(old);
    }
    Ok(switched)
}

/// Interfaces with a pinned link, sorted by name.
pub fn attached(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join(PIN_LINKS_DIR))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Facts about the loaded program for `xlvs status`.
pub struct ProgramStatus {
    /// The kernel's program id.
    pub id: u32,
    /// Instructions the verifier processed (kernel 5.16+).
    pub verified_insns: Option<u32>,
    /// Size of the JIT-compiled program.
    pub jited_bytes: u32,
}

/// The pinned program's id, verifier and JIT figures.
pub fn program_status(dir: &Path) -> Result<ProgramStatus> {
    let prog = Xdp::from_pin(prog_pin(dir), XdpAttachType::Interface)
        .map_err(|e| Error::Unavailable(format!("cannot open the pinned program: {e}")))?;
    let info = prog
        .info()
        .map_err(|e| Error::Unavailable(format!("cannot read program info: {e}")))?;
    Ok(ProgramStatus {
        id: info.id(),
        verified_insns: info.verified_instruction_count(),
        jited_bytes: info.size_jitted(),
    })
}

/// The verifier's limit on processed instructions per program.
pub const VERIFIER_LIMIT: u32 = 1_000_000;

/// The pin of the running version's tail-call array (`JUMP_<id>` of the pinned program).
pub fn running_jump_pin(dir: &Path) -> Result<PathBuf> {
    Ok(jump_pin(dir, program_status(dir)?.id))
}

/// Every program of the data plane (the main one and each tail-call stage installed in the
/// running version's tail-call array) with what the verifier reported, in the order a packet
/// meets them (`ebpf_common::Stage::ALL`); a stage whose slot is empty is left out.
pub fn programs_status(dir: &Path) -> Result<Vec<(String, ProgramStatus)>> {
    let main = program_status(dir)?;
    let path = jump_pin(dir, main.id);
    let mut out = vec![(ebpf_common::Stage::Main.name().to_string(), main)];
    let jump = aya::maps::MapData::from_pin(&path).map_err(|e| {
        Error::Unavailable(format!(
            "cannot open the pinned tail-call table {}: {e}",
            path.display()
        ))
    })?;
    use std::os::fd::{AsFd, AsRawFd};
    let fd = jump.fd().as_fd().as_raw_fd();
    let mut ids = Vec::new();
    for stage in ebpf_common::Stage::ALL {
        if stage == ebpf_common::Stage::Main {
            continue;
        }
        if let Some(id) = prog_array_id(fd, stage.slot()) {
            ids.push((stage.name(), id));
        }
    }
    let mut infos: std::collections::HashMap<u32, ProgramStatus> = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| ids.iter().any(|(_, id)| *id == p.id()))
        .map(|p| {
            let st = ProgramStatus {
                id: p.id(),
                verified_insns: p.verified_instruction_count(),
                jited_bytes: p.size_jitted(),
            };
            (p.id(), st)
        })
        .collect();
    for (name, id) in ids {
        if let Some(st) = infos.remove(&id) {
            out.push((name.to_string(), st));
        }
    }
    Ok(out)
}

/// The id of the program in slot `key` of a program array (the kernel answers a user-space
/// lookup of a program array with the program's id), `None` for an empty slot.
fn prog_array_id(map_fd: i32, key: u32) -> Option<u32> {
    #[repr(C)]
    struct LookupAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let mut value: u32 = 0;
    let attr = LookupAttr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        flags: 0,
    };
    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    // SAFETY: attr points at live key/value buffers of the sizes the map has (u32 each) for
    // the call's duration; the kernel reads attr's first size_of bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            &attr as *const LookupAttr,
            std::mem::size_of::<LookupAttr>() as u32,
        )
    };
    (rc == 0).then_some(value)
}

/// Detaches everywhere and removes every pin: the program and all tables are freed.
pub fn unload(opts: &Options) -> Result<()> {
    let dir = &opts.pin_dir;
    if !dir.exists() {
        return Ok(());
    }
    detach(opts, &[])?;
    for name in names::ALL.iter().copied().chain([PIN_PROG]) {
        let _ = fs::remove_file(dir.join(name));
    }
    for jump in jump_pins(dir) {
        let _ = fs::remove_file(jump);
    }
    let _ = fs::remove_dir(dir.join(PIN_LINKS_DIR));
    // The firewall's record of its running set goes with the maps it describes.
    let _ = fs::remove_dir_all(crate::rundir::dir(dir, "fw"));
    fs::remove_dir(dir).map_err(|e| Error::map(format!("remove {}", dir.display()), e))?;
    Ok(())
}
