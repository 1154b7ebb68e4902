//! The daemon's side of the shim zygote (berth-shim's `zygote` module): one `berth-shim
//! shim zygote` process started with the engine, which forks a shim per container on request,
//! saving the shim's exec, dynamic loading and launcher (~2.5 ms of every start here).
//!
//! The zygote's stdin is a pipe whose write end only this process holds: when the daemon
//! dies, the zygote sees EOF and exits. If the zygote is gone or cannot be reached, a start
//! falls back to exec'ing the shim launcher and the zygote is started again for the next one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub(crate) const SOCKET: &str = "shim-zygote.sock";

pub(crate) struct Zygote {
    program: PathBuf,
    socket: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Zygote {
    /// Start the zygote (`program` is the shim program, `exec_root` holds its socket).
    pub(crate) fn start(program: PathBuf, exec_root: &Path) -> Zygote {
        let z = Zygote {
            program,
            socket: exec_root.join(SOCKET),
            child: Mutex::new(None),
        };
        z.respawn(true);
        z
    }

    /// The socket to connect to when the zygote is running.
    pub(crate) fn socket(&self) -> Option<PathBuf> {
        let mut g = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => Some(self.socket.clone()),
            _ => None,
        }
    }

    /// The zygote could not be reached: reap it if it died, start a new one. `wait`: until it
    /// listens (at engine start, so the first container can use it); not on a start path,
    /// where the next start uses it or falls back to exec'ing the shim.
    pub(crate) fn respawn(&self, wait: bool) {
        let mut g = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut old) = g.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        // A stale socket of an earlier zygote would look like this one listening.
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = Command::new(&self.program);
        cmd.args(["shim", "zygote", "--socket"])
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        match cmd.spawn() {
            Ok(mut child) => {
                // Wait (briefly) until it listens, so the first start can use it.
                let t0 = std::time::Instant::now();
                while wait
                    && !self.socket.exists()
                    && t0.elapsed() < std::time::Duration::from_secs(2)
                {
                    if let Ok(Some(st)) = child.try_wait() {
                        tracing::warn!(
                            "the shim zygote exited at once ({st}); shims are exec'd instead"
                        );
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                tracing::debug!(pid = child.id(), socket = %self.socket.display(), "shim zygote started");
                *g = Some(child);
            }
            Err(e) => tracing::warn!(
                program = %self.program.display(),
                "cannot start the shim zygote ({e}); shims are exec'd instead"
            ),
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let mut g = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = g.take() {
            // EOF on its stdin makes it exit; reap it.
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}
