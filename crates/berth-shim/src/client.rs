//! A small synchronous client for the shim protocol, for the engine (and tests).
//!
//! ```no_run
//! use berth_shim::client::{launch, ShimClient};
//! use berth_shim::args::Config;
//! # fn cfg() -> Config { unimplemented!() }
//! let cfg = cfg();
//! let started = launch(std::path::Path::new("/usr/bin/berth"), &["shim"], &cfg)?;
//! let shim = ShimClient::new(&cfg.state_dir);
//! let pid = shim.start()?;
//! let (code, oom_killed) = shim.wait()?;
//! # Ok::<(), berth_shim::client::ClientError>(())
//! ```
//!
//! Attach and exec return the raw `UnixStream`: read Docker-framed output with
//! [`read_frame`] (or raw bytes with a TTY), write stdin to it, `shutdown(Write)` to close
//! stdin.

use crate::args::Config;
use crate::launch::LaunchReply;
use crate::protocol::{AttachOpts, ExecRequest, Reply, Request};
use crate::records::{self, ExecExitRecord, ExitRecord, ShimRecord};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("shim socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("shim i/o: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] crate::protocol::ProtocolError),
    /// The executable of the container's (or exec's) process does not exist (Docker: 127).
    #[error("{0}")]
    NotFound(String),
    /// The process may not be executed (Docker: 126).
    #[error("{0}")]
    PermissionDenied(String),
    /// Any other failure the shim or runtime reported.
    #[error("{0}")]
    Shim(String),
    #[error("the shim is gone and left no exit.json in {0}; the container's end is unknown")]
    Gone(PathBuf),
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Map an `ERR <kind>: <message>` text or a launch error kind to an error.
fn classify(kind: &str, msg: String) -> ClientError {
    match kind {
        "not_found" => ClientError::NotFound(msg),
        "permission_denied" => ClientError::PermissionDenied(msg),
        _ => ClientError::Shim(msg),
    }
}

fn err_reply(m: String) -> ClientError {
    match m.split_once(": ") {
        Some((k @ ("not_found" | "permission_denied"), rest)) => classify(k, rest.to_string()),
        _ => ClientError::Shim(m),
    }
}

/// What the launcher printed on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    pub shim_pid: i32,
    pub pid: i32,
}

/// Run `program prefix... <cfg args>` (e.g. `berth shim ...`) and wait for its one-line report.
pub fn launch(program: &Path, prefix: &[&str], cfg: &Config) -> Result<Launched> {
    let out = Command::new(program)
        .args(prefix)
        .args(cfg.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim();
    match serde_json::from_str::<LaunchReply>(line) {
        Ok(LaunchReply::Ok { shim_pid, pid, .. }) => Ok(Launched { shim_pid, pid }),
        Ok(LaunchReply::Err { error, kind }) => Err(classify(&kind, error)),
        Err(_) => Err(ClientError::Shim(format!(
            "the shim launcher printed no report (status {}): {line:?}",
            out.status
        ))),
    }
}

/// Read `exit.json` from a state dir.
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitRecord>> {
    Ok(records::read(state_dir, records::EXIT_JSON)?)
}

/// Read `shim.json` from a state dir.
pub fn read_shim(state_dir: &Path) -> Result<Option<ShimRecord>> {
    Ok(records::read(state_dir, records::SHIM_JSON)?)
}

/// Read `exec-<id>.json` from a state dir.
pub fn read_exec_exit(state_dir: &Path, exec_id: &str) -> Result<Option<ExecExitRecord>> {
    Ok(records::read(state_dir, &records::exec_json(exec_id))?)
}

/// Read one Docker multiplexed frame: `Ok(None)` at a clean EOF.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        let n = r.read(&mut h[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated frame header",
                ))
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some((h[0], buf)))
}

/// Read one reply line without reading past it (the stream may follow).
fn read_line(s: &mut UnixStream) -> Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = s.read(&mut b)?;
        if n == 0 {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the shim closed the connection without a reply",
            )));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
        if line.len() > 64 * 1024 {
            return Err(ClientError::Shim("shim reply line too long".into()));
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A handle on one container's shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    pub state_dir: PathBuf,
}

impl ShimClient {
    pub fn new(state_dir: &Path) -> ShimClient {
        ShimClient {
            state_dir: state_dir.to_path_buf(),
        }
    }

    pub fn socket_path(&self) -> PathBuf {
        self.state_dir.join(records::SOCKET)
    }

    fn connect(&self) -> Result<UnixStream> {
        let path = self.socket_path();
        UnixStream::connect(&path).map_err(|source| ClientError::Connect { path, source })
    }

    /// Send a request; return the reply and the connection (for streams).
    pub fn request(&self, req: &Request) -> Result<(Reply, UnixStream)> {
        let mut s = self.connect()?;
        s.write_all(req.to_line().as_bytes())?;
        let line = read_line(&mut s)?;
        let reply = Reply::parse(&line)?;
        if let Reply::Err(m) = reply {
            return Err(err_reply(m));
        }
        Ok((reply, s))
    }

    /// Whether a shim answers on the socket.
    pub fn is_alive(&self) -> bool {
        self.connect().is_ok()
    }

    /// `START`: the container's process execs. Returns its pid.
    pub fn start(&self) -> Result<i32> {
        match self.request(&Request::Start)?.0 {
            Reply::Ok(Some(pid)) => Ok(pid),
            r => Err(ClientError::Shim(format!(
                "unexpected reply to START: {r:?}"
            ))),
        }
    }

    /// `ATTACH`: returns the stream (framed unless the container has a TTY).
    pub fn attach(&self, opts: AttachOpts) -> Result<UnixStream> {
        Ok(self.request(&Request::Attach(opts))?.1)
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.request(&Request::Resize { rows, cols }).map(|_| ())
    }

    pub fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        self.request(&Request::ResizeExec {
            exec_id: exec_id.to_string(),
            rows,
            cols,
        })
        .map(|_| ())
    }

    pub fn kill(&self, signal: i32) -> Result<()> {
        self.request(&Request::Kill(signal)).map(|_| ())
    }

    /// `EXEC`: returns the exec's pid and its attach stream. After the stream ends, the exit
    /// code is in `exec-<id>.json` ([`read_exec_exit`]).
    pub fn exec(&self, req: &ExecRequest) -> Result<(i32, UnixStream)> {
        let (reply, s) = self.request(&Request::Exec(req.clone()))?;
        match reply {
            Reply::Ok(Some(pid)) => Ok((pid, s)),
            r => Err(ClientError::Shim(format!(
                "unexpected reply to EXEC: {r:?}"
            ))),
        }
    }

    /// Send `WAIT` and return the connection; the `EXIT` line arrives when the container exits
    /// (parse it with [`Reply::parse`]). For callers that poll the stream themselves.
    pub fn wait_stream(&self) -> Result<UnixStream> {
        let mut s = self.connect()?;
        s.write_all(Request::Wait.to_line().as_bytes())?;
        Ok(s)
    }

    /// Block until the container exits: (exit code, oom killed). If the shim is already gone,
    /// the answer comes from `exit.json`.
    pub fn wait(&self) -> Result<(i32, bool)> {
        let mut s = match self.wait_stream() {
            Ok(s) => s,
            Err(ClientError::Connect { .. }) => return self.exit_from_disk(),
            // Connected while the shim was closing (its container had exited): the pending
            // connection is dropped with its listener, and the request's write fails.
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return self.exit_from_disk()
            }
            Err(e) => return Err(e),
        };
        match read_line(&mut s) {
            Ok(line) => match Reply::parse(&line)? {
                Reply::Exit { code, oom_killed } => Ok((code, oom_killed)),
                Reply::Err(m) => Err(err_reply(m)),
                r => Err(ClientError::Shim(format!(
                    "unexpected reply to WAIT: {r:?}"
                ))),
            },
            // The shim died mid-wait: what it recorded, if anything.
            Err(_) => self.exit_from_disk(),
        }
    }

    fn exit_from_disk(&self) -> Result<(i32, bool)> {
        match read_exit(&self.state_dir)? {
            Some(r) => Ok((r.exit_code, r.oom_killed)),
            None => Err(ClientError::Gone(self.state_dir.clone())),
        }
    }
}
