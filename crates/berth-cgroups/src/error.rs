//! The crate's error type: every variant names the file or controller involved.

use std::path::PathBuf;

/// Errors from cgroup operations; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no usable cgroup hierarchy found: {0}")]
    NoHierarchy(String),
    #[error("cgroup {path} is still in use by processes {pids:?}; stop them first")]
    Busy { path: PathBuf, pids: Vec<i32> },
    #[error("invalid cgroup value for {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// The hierarchy does not offer a controller a limit needs (e.g. a cgroup2 mount that
    /// only has `hugetlb`, as on hosts where every other controller is bound to v1).
    #[error("the {controller} controller is not available at {path} (available: {available:?}); use a host where it is enabled, or drop the limit")]
    ControllerMissing {
        controller: &'static str,
        path: PathBuf,
        available: String,
    },
    /// The kernel did not reach the requested freezer state in time.
    #[error("cgroup {path} did not become {state} in time; retry, or check for tasks stuck in uninterruptible sleep")]
    FreezeTimeout { path: PathBuf, state: &'static str },
}

impl CgroupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, CgroupError>;
