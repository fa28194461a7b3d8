//! ipvsadm 1.31 as a library: the command line (`cli`), names (`names`), listing and save
//! formats (`format`) and execution (`exec`). The `ipvsadm` binary (`main.rs`) and the fuzz
//! targets (`fuzz/`) call it.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod cli;
pub mod exec;
pub mod format;
pub mod names;

/// Which ipvsadm the user expects: upstream 1.31, alibaba's fork (where `-b` means `--fullnat`,
/// `-V` is `--vsestablish-timeout` and saves carry `-j`/`-V`/`-P`), or DPVS's (alibaba's
/// extensions plus the deny/allow lists, where `-V` is `--del-blklst`). Chosen by
/// `XLVS_IPVSADM_FLAVOR=alibaba|dpvs`, or by a program name containing "alibaba" or "dpvs".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// ipvsadm 1.31.
    Upstream,
    /// alibaba's LVS fork.
    Alibaba,
    /// DPVS.
    Dpvs,
}

/// The flavour a program name (argv[0]) and `XLVS_IPVSADM_FLAVOR` ask for.
pub fn flavor(argv0: &str) -> Flavor {
    let env = std::env::var("XLVS_IPVSADM_FLAVOR").unwrap_or_default();
    let name = std::path::Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if env == "dpvs" || (env.is_empty() && name.contains("dpvs")) {
        Flavor::Dpvs
    } else if env == "alibaba" || name.contains("alibaba") {
        Flavor::Alibaba
    } else {
        Flavor::Upstream
    }
}
