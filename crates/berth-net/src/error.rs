//! The crate error: one enum whose variants say what went wrong and what to do, plus a
//! coarse [`ErrorKind`] the engine maps onto its own kinds (NotFound, Conflict, ...).

use std::path::PathBuf;

/// Coarse classification, mirrors the engine's error kinds (containerd's errdefs idea).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The network/endpoint does not exist.
    NotFound,
    /// Name taken, port taken, network in use, already attached.
    Conflict,
    /// Bad subnet, bad port spec, bad name.
    InvalidArgument,
    /// The kernel or `nft` refused, or a resource pool is exhausted.
    Unavailable,
}

/// Everything berth-net can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("error while removing network {name}: network has active endpoints ({count}); disconnect or remove those containers first")]
    NetworkInUse { name: String, count: usize },
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotAttached { container: String, network: String },
    /// Docker's exact wording (clients and users grep for it).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no free subnet left in the address pools (all candidates overlap host routes or other networks); pass --subnet explicitly")]
    NoFreeSubnet,
    #[error("subnet {subnet} overlaps {other}; choose another --subnet")]
    SubnetOverlap { subnet: String, other: String },
    #[error("no available IPv4 addresses on network {0}; create a network with a larger --subnet")]
    PoolExhausted(String),
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: String, network: String },
    #[error("network {0} cannot have container endpoints created by berth-net (host: share the host netns; none: only loopback)")]
    NotAttachable(String),
    #[error("netlink {op} failed: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("applying nftables ruleset failed (is the `nftables` package installed?): {0}")]
    Firewall(String),
    #[error("network state file {path}: {msg}; fix or move it away")]
    State { path: PathBuf, msg: String },
}

impl NetError {
    /// The coarse kind, for the engine/daemon to map to HTTP status codes.
    pub fn kind(&self) -> ErrorKind {
        use NetError::*;
        match self {
            NetworkNotFound(_) | NotAttached { .. } => ErrorKind::NotFound,
            NetworkExists(_)
            | Predefined(_)
            | NetworkInUse { .. }
            | AlreadyAttached { .. }
            | PortAllocated { .. }
            | AddressInUse { .. }
            | SubnetOverlap { .. } => ErrorKind::Conflict,
            InvalidArgument(_) | NotAttachable(_) => ErrorKind::InvalidArgument,
            NoFreeSubnet
            | PoolExhausted(_)
            | Netlink { .. }
            | Io { .. }
            | Firewall(_)
            | State { .. } => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetError::Netlink {
            op: op.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = NetError> = std::result::Result<T, E>;
