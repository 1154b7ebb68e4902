//! A test double [`Backend`]: the bundle's `process` runs as a plain host process (no
//! namespaces, no rootfs, no cgroups). It lets the shim's I/O loop, protocol and log writer be
//! tested without root or a runtime; never use it for real containers.
//!
//! `create` starts `sh -c 'read _ < FIFO; exec "$@"'`, so the pid is known before `start`
//! opens the FIFO and the process execs the user's command in place (same pid).

use crate::backend::{Backend, BackendError, Io, Result, Spawned};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Default)]
pub struct ProcessBackend {
    pub work_dir: PathBuf,
    fifos: HashMap<String, PathBuf>,
    pids: HashMap<String, i32>,
}

impl ProcessBackend {
    pub fn new(work_dir: PathBuf) -> ProcessBackend {
        ProcessBackend {
            work_dir,
            ..Default::default()
        }
    }
}

/// Resolve `prog` like execvp, to report "not found" / "permission denied" up front.
fn lookup(prog: &str, env: &[(String, String)]) -> Result<PathBuf> {
    let check = |p: &Path| -> Option<Result<PathBuf>> {
        let md = std::fs::metadata(p).ok()?;
        if md.is_file() && md.permissions().mode() & 0o111 != 0 {
            Some(Ok(p.to_path_buf()))
        } else {
            Some(Err(BackendError::PermissionDenied(format!(
                "exec {}: permission denied",
                p.display()
            ))))
        }
    };
    if prog.contains('/') {
        return check(Path::new(prog)).unwrap_or_else(|| {
            Err(BackendError::NotFound(format!(
                "exec {prog}: no such file or directory"
            )))
        });
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in path.split(':') {
        if let Some(r) = check(&Path::new(dir).join(prog)) {
            return r;
        }
    }
    Err(BackendError::NotFound(format!(
        "exec: {prog:?}: executable file not found in $PATH"
    )))
}

/// args, env pairs, cwd
type ProcessParts = (Vec<String>, Vec<(String, String)>, String);

fn parse_process(process: &serde_json::Value) -> Result<ProcessParts> {
    let args: Vec<String> = process["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if args.is_empty() {
        return Err(BackendError::Failed(
            "process.args is empty; give the command to run".into(),
        ));
    }
    let env = process["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| {
                    v.as_str()?
                        .split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let cwd = process["cwd"].as_str().unwrap_or("/").to_string();
    Ok((args, env, cwd))
}

fn spawn(mut cmd: Command, io: Io) -> Result<Spawned> {
    let mut console = None;
    match io {
        Io::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            cmd.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null))
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr));
        }
        Io::Tty => {
            let (master, slave) = crate::fdio::open_pty()
                .map_err(|e| BackendError::Failed(format!("open a pty: {e}")))?;
            let dup = |f: &OwnedFd| {
                f.try_clone()
                    .map_err(|e| BackendError::Failed(e.to_string()))
            };
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
            console = Some(master);
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| BackendError::Failed(format!("spawn: {e}")))?;
    // The shim reaps by pid (waitpid); the Child handle is not needed.
    Ok(Spawned {
        phases: Vec::new(),
        pid: child.id() as i32,
        console,
        cgroup: None,
    })
}

impl Backend for ProcessBackend {
    fn create(&mut self, id: &str, bundle: &Path, io: Io) -> Result<Spawned> {
        let cfg = std::fs::read(bundle.join("config.json")).map_err(|e| {
            BackendError::Failed(format!("read {}/config.json: {e}", bundle.display()))
        })?;
        let spec: serde_json::Value = serde_json::from_slice(&cfg)
            .map_err(|e| BackendError::Failed(format!("config.json: {e}")))?;
        let (args, env, cwd) = parse_process(&spec["process"])?;
        lookup(&args[0], &env)?;
        let fifo = self.work_dir.join(format!("{id}.start.fifo"));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| BackendError::Failed(format!("mkfifo {}: {e}", fifo.display())))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("read _ < \"$0\"; exec \"$@\"")
            .arg(&fifo)
            .args(&args)
            .env_clear()
            .envs(env)
            .current_dir(cwd);
        let s = spawn(cmd, io)?;
        self.fifos.insert(id.to_string(), fifo);
        self.pids.insert(id.to_string(), s.pid);
        Ok(s)
    }

    fn start(&mut self, id: &str) -> Result<()> {
        let fifo = self.fifos.remove(id).ok_or_else(|| {
            BackendError::Failed(format!("container {id} is not created or already started"))
        })?;
        let r = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"\n"));
        let _ = std::fs::remove_file(&fifo);
        r.map_err(|e| BackendError::Failed(format!("start {id}: {e}")))
    }

    fn exec(
        &mut self,
        _id: &str,
        _exec_id: &str,
        process: &serde_json::Value,
        io: Io,
    ) -> Result<Spawned> {
        let (args, env, cwd) = parse_process(process)?;
        let prog = lookup(&args[0], &env)?;
        let mut cmd = Command::new(prog);
        cmd.args(&args[1..]).env_clear().envs(env).current_dir(cwd);
        spawn(cmd, io)
    }

    fn kill(&mut self, id: &str, signal: i32) -> Result<()> {
        let pid = *self
            .pids
            .get(id)
            .ok_or_else(|| BackendError::Failed(format!("container {id} does not exist")))?;
        let sig = nix::sys::signal::Signal::try_from(signal)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(|e| BackendError::Failed(format!("kill {pid}: {e}")))
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        self.pids.remove(id);
        if let Some(f) = self.fifos.remove(id) {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    }
}
