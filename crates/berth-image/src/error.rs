//! The crate-level error: wraps each module's error, plus what the store itself raises.

use crate::config::ConfigError;
use crate::digest::Digest;
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::snapshot::SnapshotError;
use crate::unpack::UnpackError;

/// The few kinds the engine maps to HTTP statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}; pull it with berth pull {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {expected}: content has digest {actual}; the registry sent corrupt or tampered data")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {digest} is truncated: got {got} of {want} bytes")]
    Truncated { digest: Digest, got: u64, want: u64 },
    #[error("blob {digest} is larger than its descriptor says ({want} bytes)")]
    Oversized { digest: Digest, want: u64 },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("download of {digest} interrupted: {message}")]
    Interrupted { digest: Digest, message: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
}

impl ImageError {
    /// The engine-level kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Invalid(_) | ImageError::Reference(_) => ErrorKind::InvalidArgument,
            ImageError::Manifest(ManifestError::BadPlatform(_)) => ErrorKind::InvalidArgument,
            ImageError::Manifest(ManifestError::NoPlatform { .. }) => ErrorKind::NotFound,
            ImageError::Registry(r) => match r {
                RegistryError::ManifestUnknown { .. }
                | RegistryError::NameUnknown { .. }
                | RegistryError::BlobUnknown { .. } => ErrorKind::NotFound,
                RegistryError::AuthRequired { .. }
                | RegistryError::BadCredentials { .. }
                | RegistryError::LoginRefused { .. }
                | RegistryError::Denied { .. } => ErrorKind::Unauthorized,
                _ => ErrorKind::Unavailable,
            },
            ImageError::Interrupted { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}
