//! The default [`Backend`]: berth's runtime called in-process (no runtime binary exec'd on
//! the start path). The init and exec'd processes are the shim's children.
//!
//! `create` and `exec` run in a forked, short-lived helper (see [`in_helper`]): the runtime's
//! code (spec parsing, seccomp compilation, mounts) is then never touched by the long-lived
//! shim, whose resident memory stays what its own poll loop needs (3.5 MB → under 1 MB per
//! container). The process made there is the helper's child; when the helper exits it is
//! re-parented to the shim, a child subreaper.
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
    /// Write `{"early_pid":N}` to stdout (the report channel) as soon as the init is cloned.
    pub early_pid: bool,
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
            ..Default::default()
        },
        Io::Tty => CreateOptions {
            console: ConsoleMode::ReturnMaster,
            ..Default::default()
        },
    }
}

/// What the helper sends back: the new process, or why it failed.
#[derive(serde::Serialize, serde::Deserialize)]
struct HelperReply {
    pid: Option<i32>,
    #[serde(default)]
    phases: Vec<(String, u64)>,
    #[serde(default)]
    cgroup: Option<String>,
    kind: Option<String>,
    error: Option<String>,
}

/// Run `f` in a forked helper and bring back its result, with the PTY master (if any) passed
/// over a socket. The caller is the single-threaded shim, so the fork is safe.
fn in_helper(f: impl FnOnce() -> Result<Spawned>) -> Result<Spawned> {
    use std::os::fd::AsFd;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| BackendError::Failed(format!("socketpair: {e}")))?;
    // `theirs` moves into the closure, which the parent drops right after the fork.
    let helper = berth_sys::process::fork_child(move || {
        let (reply, console) = match with_sigchld_unblocked(f) {
            Ok(s) => (
                HelperReply {
                    pid: Some(s.pid),
                    phases: s.phases,
                    cgroup: s.cgroup,
                    kind: None,
                    error: None,
                },
                s.console,
            ),
            Err(e) => (
                HelperReply {
                    pid: None,
                    phases: Vec::new(),
                    cgroup: None,
                    kind: Some(e.kind().to_string()),
                    error: Some(e.message().to_string()),
                },
                None,
            ),
        };
        let msg = serde_json::to_vec(&reply).unwrap_or_default();
        let sent = match &console {
            Some(fd) => berth_sys::fd::send_fd(theirs.as_fd(), &msg, fd.as_fd()),
            None => std::io::Write::write_all(&mut &theirs, &msg),
        };
        i32::from(sent.is_err())
    })
    .map_err(|e| BackendError::Failed(format!("fork the runtime helper: {e}")))?;
    let got = berth_sys::fd::recv_with_fds(ours.as_fd());
    // Reap it now if it is gone already; else the shim's loop reaps it later (an unknown pid
    // there is ignored). Waiting for its exit here would cost a scheduling round on the
    // start path. On a failed read, wait: nothing else is left to do.
    let flags = got.is_ok().then_some(nix::sys::wait::WaitPidFlag::WNOHANG);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), flags);
    let (data, mut fds) =
        got.map_err(|e| BackendError::Failed(format!("read the runtime helper's reply: {e}")))?;
    let reply: HelperReply = serde_json::from_slice(&data).map_err(|_| {
        BackendError::Failed("the runtime helper exited without a reply".to_string())
    })?;
    match (reply.pid, reply.error) {
        (Some(pid), None) => Ok(Spawned {
            pid,
            console: (!fds.is_empty()).then(|| fds.swap_remove(0)),
            phases: reply.phases,
            cgroup: reply.cgroup,
        }),
        (_, e) => {
            let msg = e.unwrap_or_else(|| "the runtime helper failed".into());
            Err(match reply.kind.as_deref() {
                Some("not_found") => BackendError::NotFound(msg),
                Some("permission_denied") => BackendError::PermissionDenied(msg),
                _ => BackendError::Failed(msg),
            })
        }
    }
}

impl Backend for LibBackend {
    fn create(&mut self, id: &str, bundle: &Path, io: Io) -> Result<Spawned> {
        let rt = &self.rt;
        let early = self.early_pid;
        in_helper(|| {
            let mut opts = options(io);
            if early {
                opts.on_pid = Some(berth_runtime::PidCallback(Box::new(|pid| {
                    // Straight to the descriptor: this forked helper shares stdout's buffer
                    // state with the shim, and the shim reports on the same channel later.
                    let line = format!("{{\"early_pid\":{pid}}}\n");
                    let _ = rustix::io::write(std::io::stdout(), line.as_bytes());
                })));
            }
            let c = rt.create(id, bundle, opts).map_err(map)?;
            Ok(Spawned {
                pid: c.pid,
                console: c.console_master,
                phases: c.phases,
                cgroup: c.cgroup_path,
            })
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
        let rt = &self.rt;
        in_helper(|| {
            let process: oci_spec::runtime::Process = serde_json::from_value(p)
                .map_err(|e| BackendError::Failed(format!("exec process json: {e}")))?;
            let c = rt.exec(id, &process, options(io)).map_err(map)?;
            Ok(Spawned {
                pid: c.pid,
                console: c.console_master,
                phases: c.phases,
                cgroup: c.cgroup_path,
            })
        })
    }

    fn kill(&mut self, id: &str, signal: i32) -> Result<()> {
        self.rt.kill(id, signal, false).map_err(map)
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        self.rt.delete(id, true).map_err(map)
    }
}
