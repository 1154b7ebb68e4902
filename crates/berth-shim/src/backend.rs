//! How the shim drives a container: a small trait over "the runtime", so the I/O loop does
//! not care whether the container is made by berth's runtime, by a runc-compatible binary, or
//! (in unit tests) by a plain host process.

use std::os::fd::OwnedFd;
use std::path::Path;

/// The container's side of its stdio.
#[derive(Debug)]
pub enum Io {
    /// Pipes (or `/dev/null` for stdin when `stdin` is `None`).
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// A new pseudo-terminal; the backend returns its master in [`Spawned::console`].
    Tty,
}

/// A process the backend created (the container's init, or an exec).
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    /// PTY master when [`Io::Tty`] was asked for.
    pub console: Option<OwnedFd>,
    /// The runtime's steps (name, microseconds) when it measured them.
    pub phases: Vec<(String, u64)>,
    /// The container's cgroup when the runtime says (berth's own; for others the shim reads
    /// `linux.cgroupsPath` from the bundle).
    pub cgroup: Option<String>,
}

/// Why a backend call failed. The two first kinds let the daemon answer like Docker
/// (127 for a missing executable, 126 for one it may not run).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("executable not found: {0}")]
    NotFound(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Failed(String),
}

impl BackendError {
    /// Classify a runtime's error text.
    pub fn from_message(msg: &str) -> BackendError {
        let m = msg.trim().to_string();
        let l = m.to_ascii_lowercase();
        if l.contains("executable file not found")
            || l.contains("not found in $path")
            || (l.contains("no such file or directory")
                && (l.contains("exec") || l.contains("starting container process")))
        {
            BackendError::NotFound(m)
        } else if l.contains("permission denied") {
            BackendError::PermissionDenied(m)
        } else {
            BackendError::Failed(m)
        }
    }

    /// The message without the kind's prefix.
    pub fn message(&self) -> &str {
        match self {
            BackendError::NotFound(m)
            | BackendError::PermissionDenied(m)
            | BackendError::Failed(m) => m,
        }
    }

    /// Short kind name for the launcher's JSON (`not_found`, `permission_denied`, `failed`).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::NotFound(_) => "not_found",
            BackendError::PermissionDenied(_) => "permission_denied",
            BackendError::Failed(_) => "failed",
        }
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// The runtime operations the shim needs. Every created process is a child of the shim, or
/// is re-parented to it (the shim is a child subreaper), so the shim reaps it.
pub trait Backend {
    /// Create the container; its init waits before exec until [`Backend::start`].
    fn create(&mut self, id: &str, bundle: &Path, io: Io) -> Result<Spawned>;
    /// Let the init exec the user's process.
    fn start(&mut self, id: &str) -> Result<()>;
    /// Run an extra process (OCI `Process` JSON) in the container.
    fn exec(
        &mut self,
        id: &str,
        exec_id: &str,
        process: &serde_json::Value,
        io: Io,
    ) -> Result<Spawned>;
    /// Send a signal to the container's init.
    fn kill(&mut self, id: &str, signal: i32) -> Result<()>;
    /// Remove what the runtime keeps (cgroups, state); the init has exited.
    fn delete(&mut self, id: &str) -> Result<()>;
}
