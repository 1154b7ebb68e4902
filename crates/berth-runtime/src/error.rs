//! The runtime's error type: one enum, each variant says what went wrong and what to do.

use std::io;

/// The few kinds a caller branches on (the engine maps them to HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    /// The container's command does not exist (Docker exits 127).
    CommandNotFound,
    /// The container's command is not executable (Docker exits 126).
    CommandNotExecutable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?} is invalid; use letters, digits, '_', '-', '.', '+' only")]
    InvalidId(String),
    #[error("container {0:?} already exists; delete it first or choose another id")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("invalid config.json: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },
    #[error("container {id:?} is {status}: {what}")]
    WrongState {
        id: String,
        status: &'static str,
        what: String,
    },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    CommandNotFound(String),
    #[error("exec: {0:?}: permission denied")]
    CommandNotExecutable(String),
    #[error("container init: {0}")]
    Init(String),
    #[error("hook {path}: {reason}")]
    Hook { path: String, reason: String },
    #[error("cgroups: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) | Error::WrongState { .. } => ErrorKind::Conflict,
            Error::InvalidId(_) | Error::InvalidSpec { .. } => ErrorKind::InvalidArgument,
            Error::CommandNotFound(_) => ErrorKind::CommandNotFound,
            Error::CommandNotExecutable(_) => ErrorKind::CommandNotExecutable,
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach context to io-like errors.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
