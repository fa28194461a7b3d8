//! BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH on a hash map: a million firewall entries in a
//! few dozen system calls instead of a million (aya 0.14 has no batch operations).

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// Entries per call (the kernel copies keys and values in one go).
const CHUNK: usize = 32768;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn call(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    // SAFETY: the kernel reads `attr` (and the arrays it points to, alive for the call) and
    // writes `count` back.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `keys[i]` -> `values[i]` (BPF_ANY).
pub fn update<K, V>(map: &MapData, keys: &[K], values: &[V]) -> std::io::Result<()> {
    assert_eq!(keys.len(), values.len());
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut attr = BatchAttr {
            keys: k.as_ptr() as u64,
            values: v.as_ptr() as u64,
            count: k.len() as u32,
            map_fd: fd,
            ..Default::default()
        };
        call(BPF_MAP_UPDATE_BATCH, &mut attr)?;
    }
    Ok(())
}

/// Removes `keys` (absent ones stop a batch with ENOENT: the rest are then removed one call
/// per chunk after it).
pub fn delete<K>(map: &MapData, keys: &[K]) -> std::io::Result<()> {
    let fd = map.fd().as_fd().as_raw_fd() as u32;
    for chunk in keys.chunks(CHUNK) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let mut attr = BatchAttr {
                keys: rest.as_ptr() as u64,
                count: rest.len() as u32,
                map_fd: fd,
                ..Default::default()
            };
            match call(BPF_MAP_DELETE_BATCH, &mut attr) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // `count` says how many went before the missing one: skip it too.
                    rest = &rest[(attr.count as usize + 1).min(rest.len())..];
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
