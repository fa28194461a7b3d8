//! A pinned BPF_F_MMAPABLE array mapped into this process: the packet path changes such arrays
//! with atomic adds, so user space must change them with atomic operations on the same memory
//! (a map update would overwrite a concurrent add). `T` is the value's layout as atomics.

use std::os::fd::AsFd;
use std::path::Path;
use std::ptr::NonNull;

use aya::maps::MapData;

use crate::error::{Error, Result};

pub struct SharedArray<T> {
    base: NonNull<T>,
    entries: u32,
    len: usize,
    /// Keeps the map alive while mapped.
    _map: MapData,
}

// SAFETY: the mapping is plain shared memory that `T` (atomics only) accesses.
unsafe impl<T: Sync> Send for SharedArray<T> {}
// SAFETY: as above: every access goes through `T`'s atomics.
unsafe impl<T: Sync> Sync for SharedArray<T> {}

impl<T> SharedArray<T> {
    /// Maps the pinned array `name` under `dir`, whose values must be `value_size` bytes (the
    /// size of the kernel-side value, which `T` mirrors).
    pub fn open(dir: &Path, name: &str, value_size: usize) -> Result<SharedArray<T>> {
        assert_eq!(
            std::mem::size_of::<T>(),
            value_size,
            "{name}: layout mismatch"
        );
        let path = dir.join(name);
        let unavailable =
            |e: String| Error::Unavailable(format!("pinned map {}: {e}", path.display()));
        let map = MapData::from_pin(&path).map_err(|e| unavailable(e.to_string()))?;
        let info = map.info().map_err(|e| unavailable(e.to_string()))?;
        if info.value_size() as usize != value_size {
            return Err(unavailable("unexpected layout".into()));
        }
        let entries = info.max_entries();
        let len = entries as usize * value_size;
        // SAFETY: a fresh shared mapping of the whole array; the kernel checks size and flags.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                std::num::NonZeroUsize::new(len).ok_or_else(|| unavailable("empty".into()))?,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
                map.fd().as_fd(),
                0,
            )
        }
        .map_err(|e| unavailable(format!("cannot map it: {e}")))?;
        Ok(SharedArray {
            base: ptr.cast(),
            entries,
            len,
            _map: map,
        })
    }

    /// The value at `index`, if in bounds.
    pub fn slot(&self, index: u32) -> Option<&T> {
        // SAFETY: in bounds of the mapping, which lives as long as self.
        (index < self.entries).then(|| unsafe { &*self.base.as_ptr().add(index as usize) })
    }
}

impl<T> Drop for SharedArray<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open, unmapped once.
        unsafe {
            let _ = nix::sys::mman::munmap(self.base.cast(), self.len);
        }
    }
}
