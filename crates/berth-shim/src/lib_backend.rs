//! The default [`Backend`]: berth's runtime called in-process (no runtime binary exec'd on
//! the start path). The init and exec'd processes are the shim's children.
//!
//! The shim keeps SIGCHLD blocked (it reads it from a signalfd), and a blocked mask survives
//! clone and execve: the container would start with SIGCHLD blocked. So SIGCHLD is unblocked
//! around every runtime call that creates a process; a SIGCHLD that arrives meanwhile is lost
//! to the signalfd, which is why the server reaps after every request as well.

use crate::backend::{Backend, BackendError, Io, Result, Spawned};
use berth_runtime::{ConsoleMode, CreateOptions, ErrorKind, Runtime};
use nix::sys::signal::{SigSet, Signal};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct LibBackend {
    pub rt: Runtime,
}

fn map(e: berth_runtime::Error) -> BackendError {
    match e.kind() {
        ErrorKind::CommandNotFound => BackendError::NotFound(e.to_string()),
        ErrorKind::CommandNotExecutable => BackendError::PermissionDenied(e.to_string()),
        _ => BackendError::Failed(e.to_string()),
    }
}

/// Run `f` with SIGCHLD unblocked, so processes it creates start with an empty mask.
fn with_sigchld_unblocked<T>(f: impl FnOnce() -> T) -> T {
    let mut m = SigSet::empty();
    m.add(Signal::SIGCHLD);
    let _ = m.thread_unblock();
    let r = f();
    let _ = m.thread_block();
    r
}

fn options(io: Io) -> CreateOptions {
    match io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => CreateOptions {
            // No stdin: /dev/null rather than the shim's own stdin.
            stdin: stdin.or_else(|| crate::fdio::dev_null().ok()),
            stdout: Some(stdout),
            stderr: Some(stderr),
            console: ConsoleMode::None,
            pid_file: None,
        },
        Io::Tty => CreateOptions {
            console: ConsoleMode::ReturnMaster,
            ..Default::default()
        },
    }
}

impl Backend for LibBackend {
    fn create(&mut self, id: &str, bundle: &Path, io: Io) -> Result<Spawned> {
        let c = with_sigchld_unblocked(|| self.rt.create(id, bundle, options(io))).map_err(map)?;
        Ok(Spawned {
            pid: c.pid,
            console: c.console_master,
        })
    }

    fn start(&mut self, id: &str) -> Result<()> {
        self.rt.start(id).map_err(map)
    }

    fn exec(
        &mut self,
        id: &str,
        _exec_id: &str,
        process: &serde_json::Value,
        io: Io,
    ) -> Result<Spawned> {
        let mut p = process.clone();
        if let Some(o) = p.as_object_mut() {
            o.insert(
                "terminal".into(),
                serde_json::Value::Bool(matches!(io, Io::Tty)),
            );
        }
        let process: oci_spec::runtime::Process = serde_json::from_value(p)
            .map_err(|e| BackendError::Failed(format!("exec process json: {e}")))?;
        let c = with_sigchld_unblocked(|| self.rt.exec(id, &process, options(io))).map_err(map)?;
        Ok(Spawned {
            pid: c.pid,
            console: c.console_master,
        })
    }

    fn kill(&mut self, id: &str, signal: i32) -> Result<()> {
        self.rt.kill(id, signal, false).map_err(map)
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        self.rt.delete(id, true).map_err(map)
    }
}
