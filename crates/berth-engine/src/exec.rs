//! `exec`: extra processes in a running container, run through its shim.

use serde::{Deserialize, Serialize};

/// An exec to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
}

/// `exec start` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStartOptions {
    /// Run in the background; no stream is returned.
    pub detach: bool,
    /// Initial size (rows, cols) for a TTY.
    pub console_size: Option<(u16, u16)>,
}

/// What `exec inspect` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub spec: ExecSpec,
    pub running: bool,
    /// `None` until the process exits.
    pub exit_code: Option<i32>,
    pub pid: i32,
}
