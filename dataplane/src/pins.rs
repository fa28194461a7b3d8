//! Pinned maps left by an earlier build whose size this build changed (more counters or
//! settings): adopting them as they are would make every access past their end fail. These
//! arrays only hold counters and settings: they are made anew (counters restart at zero; the
//! settings are carried over). (Tail-call arrays belong to one loaded version each, see
//! loader.rs.) The other maps are sized by
//! limits that do not change between builds, or by options (the connection table).

use std::path::Path;

use aya::maps::{Array, MapData};
use ebpf_common::maps as names;

use crate::error::{Error, Result};

/// (map, entries this build needs).
const RESIZABLE: [(&str, u32); 2] = [
    (names::COUNTERS, ebpf_common::counter::COUNT),
    (names::CONFIG, ebpf_common::config::COUNT),
];

/// Entries of a pinned map, if it is pinned.
fn pinned_entries(dir: &Path, name: &str) -> Result<Option<(MapData, u32)>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let map = MapData::from_pin(&path).map_err(|e| {
        Error::Unavailable(format!("cannot open pinned map {}: {e}", path.display()))
    })?;
    let info = map
        .info()
        .map_err(|e| Error::Unavailable(format!("cannot read {}: {e}", path.display())))?;
    let entries = info.max_entries();
    Ok(Some((map, entries)))
}

/// Removes the pins of resized maps this build can make anew; returns the settings (CONFIG)
/// of the old map when it was one of them, to be written into the new one.
pub(crate) fn reconcile(dir: &Path) -> Result<Vec<u32>> {
    let mut kept = Vec::new();
    for (name, want) in RESIZABLE {
        let Some((map, have)) = pinned_entries(dir, name)? else {
            continue;
        };
        if have == want {
            continue;
        }
        if name == names::CONFIG {
            let old: Array<MapData, u32> = Array::try_from(aya::maps::Map::Array(map))
                .map_err(|e| Error::Unavailable(format!("pinned map {name}: {e}")))?;
            kept = (0..have).map(|i| old.get(&i, 0).unwrap_or(0)).collect();
        }
        std::fs::remove_file(dir.join(name))
            .map_err(|e| Error::map(format!("remove the pin of {name}"), e))?;
    }
    Ok(kept)
}

/// Writes the settings kept by [`reconcile`] into the newly made CONFIG.
pub(crate) fn restore_config(ebpf: &mut aya::Ebpf, kept: &[u32]) -> Result<()> {
    if kept.is_empty() {
        return Ok(());
    }
    let map = ebpf
        .map_mut(names::CONFIG)
        .ok_or_else(|| Error::Unavailable("object has no CONFIG map".into()))?;
    let mut config: Array<&mut MapData, u32> =
        Array::try_from(map).map_err(|e| Error::Unavailable(format!("CONFIG: {e}")))?;
    for (i, v) in kept
        .iter()
        .enumerate()
        .take(ebpf_common::config::COUNT as usize)
    {
        config
            .set(i as u32, *v, 0)
            .map_err(|e| Error::Unavailable(format!("restore CONFIG[{i}]: {e}")))?;
    }
    Ok(())
}
