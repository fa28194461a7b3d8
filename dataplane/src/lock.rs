//! One writer at a time: an exclusive flock(2) on the pin directory itself, held for the life of
//! a `Dataplane` that writes. Readers (listings) take no lock: every map update is atomic per entry.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

pub struct WriteLock {
    _dir: nix::fcntl::Flock<File>,
}

impl WriteLock {
    pub fn acquire(pin_dir: &Path) -> Result<WriteLock> {
        let dir = File::open(pin_dir)
            .map_err(|e| Error::map(format!("open {}", pin_dir.display()), e))?;
        // Blocks while another writer holds it; released when the file is closed (also on crash).
        let dir = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::map("flock", std::io::Error::from(e)))?;
        Ok(WriteLock { _dir: dir })
    }
}
