//! A [`Backend`] that runs a runc-compatible runtime binary (`berth runtime`, runc, crun):
//! `create --pid-file --console-socket`, `start`, `exec --detach`, `kill`, `delete --force`.
//! The container's init is the runtime's child; when `create` returns it is re-parented to the
//! shim, which is a child subreaper.

use crate::backend::{Backend, BackendError, Io, Result, Spawned};
use std::io::IoSliceMut;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `program [prefix...] --root ROOT <verb> ...`.
#[derive(Debug, Clone)]
pub struct CliBackend {
    pub program: PathBuf,
    /// Arguments before the global flags, e.g. `["runtime"]` for `berth runtime`.
    pub prefix: Vec<String>,
    pub root: PathBuf,
    /// Where the pid files, console sockets and exec process files go.
    pub work_dir: PathBuf,
}

fn errtext(out: &std::process::Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if s.is_empty() {
        s = format!("runtime exited with {}", out.status);
    }
    s
}

/// Receive the PTY master a runtime sends on the console socket (runc's protocol: one
/// `SCM_RIGHTS` message whose payload is the terminal's name).
pub fn recv_console(listener: &UnixListener) -> std::result::Result<OwnedFd, String> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (conn, _) = listener
        .accept()
        .map_err(|e| format!("the runtime did not connect to the console socket: {e}"))?;
    conn.set_nonblocking(false).map_err(|e| e.to_string())?;
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    recvmsg(&conn, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| format!("receive console fd: {e}"))?;
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err("the runtime sent no file descriptor on the console socket".into())
}

impl CliBackend {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix).arg("--root").arg(&self.root);
        c
    }

    fn simple(&self, args: &[&str]) -> Result<()> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| BackendError::Failed(format!("run {}: {e}", self.program.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(BackendError::from_message(&errtext(&out)))
        }
    }

    /// Run a create/exec command with the process's stdio; `id` goes last, after the flags.
    fn spawn_with_io(&self, mut cmd: Command, io: Io, tag: &str, id: &str) -> Result<Spawned> {
        let pid_file = self.work_dir.join(format!("{tag}.pid"));
        let _ = std::fs::remove_file(&pid_file);
        cmd.arg("--pid-file").arg(&pid_file);
        let mut console = None;
        match io {
            Io::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                // Pass-through: the runtime hands its own stdio to the container.
                cmd.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null))
                    .stdout(Stdio::from(stdout))
                    .stderr(Stdio::from(stderr));
            }
            Io::Tty => {
                let sock = self.work_dir.join(format!("{tag}.console.sock"));
                let _ = std::fs::remove_file(&sock);
                let l = UnixListener::bind(&sock)
                    .map_err(|e| BackendError::Failed(format!("bind {}: {e}", sock.display())))?;
                cmd.arg("--console-socket").arg(&sock);
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                console = Some((l, sock));
            }
        }
        cmd.arg(id);
        let out = cmd
            .output()
            .map_err(|e| BackendError::Failed(format!("run {}: {e}", self.program.display())))?;
        let cleanup = |c: &Option<(UnixListener, PathBuf)>| {
            if let Some((_, sock)) = c {
                let _ = std::fs::remove_file(sock);
            }
        };
        if !out.status.success() {
            cleanup(&console);
            return Err(BackendError::from_message(&errtext(&out)));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or_else(|| {
                BackendError::Failed(format!(
                    "the runtime wrote no pid to {}",
                    pid_file.display()
                ))
            });
        let _ = std::fs::remove_file(&pid_file);
        let console = match console {
            Some((l, sock)) => {
                let r = recv_console(&l);
                let _ = std::fs::remove_file(&sock);
                Some(r.map_err(BackendError::Failed)?)
            }
            None => None,
        };
        Ok(Spawned {
            pid: pid?,
            console,
            phases: Vec::new(),
            cgroup: None,
        })
    }
}

impl Backend for CliBackend {
    fn create(&mut self, id: &str, bundle: &Path, io: Io) -> Result<Spawned> {
        let mut cmd = self.cmd();
        cmd.arg("create").arg("--bundle").arg(bundle);
        self.spawn_with_io(cmd, io, "init", id)
    }

    fn start(&mut self, id: &str) -> Result<()> {
        self.simple(&["start", id])
    }

    fn exec(
        &mut self,
        id: &str,
        exec_id: &str,
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
        let pf = self.work_dir.join(format!("exec-{exec_id}.process.json"));
        std::fs::write(&pf, serde_json::to_vec(&p).unwrap_or_default())
            .map_err(|e| BackendError::Failed(format!("write {}: {e}", pf.display())))?;
        let mut cmd = self.cmd();
        cmd.arg("exec").arg("--detach").arg("--process").arg(&pf);
        let r = self.spawn_with_io(cmd, io, &format!("exec-{exec_id}"), id);
        let _ = std::fs::remove_file(&pf);
        r
    }

    fn kill(&mut self, id: &str, signal: i32) -> Result<()> {
        self.simple(&["kill", id, &signal.to_string()])
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        self.simple(&["delete", "--force", id])
    }
}
