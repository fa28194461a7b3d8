//! Typed errors of data-plane operations. `Display` gives ipvsadm's (libipvs `ipvs_strerror`) text for
//! the situations IPVS itself reports, so front ends print them unchanged.

use std::io;

/// What a data-plane operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// add-service: the service exists (IPVS EEXIST).
    #[error("Service already exists")]
    ServiceExists,
    /// edit/delete/zero/get service: no such service (IPVS ESRCH).
    #[error("No such service")]
    NoSuchService,
    /// destination operations on a service that does not exist (IPVS ESRCH).
    #[error("Service not defined")]
    ServiceNotDefined,
    /// add-server: the destination exists (IPVS EEXIST).
    #[error("Destination already exists")]
    DestExists,
    /// edit/delete server: no such destination (IPVS ENOENT).
    #[error("No such destination")]
    NoSuchDest,
    /// add-laddr: the local address exists (alibaba/DPVS libipvs EEXIST).
    #[error("Local address already exists")]
    LaddrExists,
    /// del-laddr: no such local address (alibaba/DPVS libipvs ENOENT; their capitalisation).
    #[error("No such Local address")]
    NoSuchLaddr,
    /// DPVS add-blklst / add-whtlst: the address is on the list already (their texts).
    #[error("{}", match .0 { crate::model::AclKind::Deny => "blacklist address already exists", crate::model::AclKind::Allow => "whitelist address already exists" })]
    AclExists(crate::model::AclKind),
    /// DPVS del-blklst / del-whtlst: not on the list (DPVS says "deny" for both).
    #[error("No such deny address")]
    NoSuchAclAddr,
    /// unknown scheduler or persistence engine (IPVS ENOENT on add/edit service).
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// a table is full (IPVS ENOMEM).
    #[error("Memory allocation problem")]
    NoMemory,
    /// not allowed to touch the maps (EPERM).
    #[error("Permission denied (you must be root)")]
    PermissionDenied,
    /// invalid request (IPVS EINVAL).
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    Invalid,
    /// address family not supported for this operation (IPVS EAFNOSUPPORT).
    #[error("Operation not supported with specified address family")]
    AfNotSupported,
    /// the data plane could not be loaded or opened (no BPF, no bpffs, ...): the text says which.
    #[error("{0}")]
    Unavailable(String),
    /// a fwmark classifier rule that cannot be added or removed (`xlvs fwmark`): the text says why.
    #[error("{0}")]
    Fwmark(String),
    /// a map operation failed for another reason.
    #[error("{context}: {source}")]
    Map {
        /// What was being done.
        context: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

/// A data-plane result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an OS error from a map operation, turning the errnos IPVS names into their variants.
    pub(crate) fn map(context: impl Into<String>, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied,
            Some(libc::E2BIG) | Some(libc::ENOMEM) | Some(libc::ENOSPC) => Error::NoMemory,
            _ => Error::Map {
                context: context.into(),
                source,
            },
        }
    }
}
