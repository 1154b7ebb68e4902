//! Talking to a container's shim: spawning `berth shim ...`, and the text-line protocol on
//! `STATE-DIR/shim.sock` (one request per connection; see berth-shim's `protocol` module).
//! The engine speaks it over tokio so a waiting `WAIT` costs no thread.

use crate::error::{EngineError, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub const SOCKET: &str = "shim.sock";
pub const SHIM_JSON: &str = "shim.json";
pub const EXIT_JSON: &str = "exit.json";

/// `STATE-DIR/shim.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShimRecord {
    pub shim_pid: i32,
    pub pid: i32,
}

/// `STATE-DIR/exit.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub finished_at: String,
}

/// What `berth shim` prints on stdout.
#[derive(Debug, Deserialize)]
struct SpawnReply {
    shim_pid: Option<i32>,
    pid: Option<i32>,
    error: Option<String>,
    /// The shim's and runtime's steps (name, microseconds).
    #[serde(default)]
    phases: Vec<(String, u64)>,
}

/// A started shim.
#[derive(Debug)]
pub struct Spawned {
    pub shim_pid: i32,
    pub pid: i32,
    /// Where the time went inside the shim (name, microseconds), in order.
    pub phases: Vec<(String, u64)>,
}

/// Arguments for one shim.
#[derive(Debug, Clone)]
pub struct ShimArgs<'a> {
    pub berth_binary: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub state_dir: &'a Path,
    pub runtime_root: &'a Path,
    pub log_path: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    pub log_max_size: u64,
    pub log_max_files: u32,
}

/// How a failed spawn should be classified (Docker's 127 / 126 convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnFailure {
    NotFound,
    PermissionDenied,
    Other,
}

/// Classify a runtime error message the way the docker CLI does.
pub fn classify(message: &str) -> SpawnFailure {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        SpawnFailure::NotFound
    } else if m.contains("permission denied") {
        SpawnFailure::PermissionDenied
    } else {
        SpawnFailure::Other
    }
}

/// Start a shim; returns (shim_pid, container pid) once the container is created. Through the
/// zygote when there is one (a fork, no exec), else by exec'ing the shim launcher.
///
/// `early`: through the zygote, the container's pid is sent there as soon as the runtime has
/// cloned it (the caller can set up the network while the init sets up its mounts); it is
/// dropped unsent when the pid only comes with the report.
pub async fn spawn(
    a: &ShimArgs<'_>,
    zygote: Option<&crate::zygote::Zygote>,
    early: Option<tokio::sync::oneshot::Sender<i32>>,
) -> Result<Spawned> {
    let mut args: Vec<String> = vec![
        "--id".into(),
        a.id.into(),
        "--bundle".into(),
        a.bundle.display().to_string(),
        "--state-dir".into(),
        a.state_dir.display().to_string(),
        "--runtime-root".into(),
        a.runtime_root.display().to_string(),
        "--log-path".into(),
        a.log_path.display().to_string(),
        "--log-max-size".into(),
        a.log_max_size.to_string(),
        "--log-max-files".into(),
        a.log_max_files.to_string(),
    ];
    if a.tty {
        args.push("--tty".into());
    }
    if a.stdin {
        args.push("--stdin".into());
    }
    if let Some(z) = zygote {
        if let Some(sock) = z.socket() {
            let mut zargs = args.clone();
            if early.is_some() {
                zargs.push("--early-pid".into());
            }
            match via_zygote(&sock, &zargs, early).await {
                Ok(line) => return spawn_reply(&line, a.state_dir),
                Err(ZygoteError::Unreachable(e)) => {
                    tracing::warn!("shim zygote unreachable ({e}); exec'ing the shim");
                    z.respawn(false);
                }
                Err(ZygoteError::Lost(e)) => {
                    return Err(EngineError::internal(format!(
                        "the shim exited before reporting ({e}); see {}",
                        a.state_dir.join("shim.log").display()
                    )))
                }
            }
        }
    }
    let program = shim_program(a.berth_binary);
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg("shim").args(&args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false);
    let out = cmd.output().await.map_err(|e| {
        EngineError::internal(format!(
            "cannot run the shim {}: {e}; check the berth binary path",
            program.display()
        ))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find(|l| l.trim_start().starts_with('{')) {
        Some(line) => spawn_reply(line, a.state_dir),
        None => Err(EngineError::internal(format!(
            "shim failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The launcher's (or zygote-forked shim's) JSON report → (shim pid, container pid).
fn spawn_reply(line: &str, state_dir: &Path) -> Result<Spawned> {
    match serde_json::from_str::<SpawnReply>(line.trim()) {
        Ok(SpawnReply {
            shim_pid: Some(shim_pid),
            pid: Some(pid),
            error: None,
            phases,
        }) => Ok(Spawned {
            shim_pid,
            pid,
            phases,
        }),
        Ok(SpawnReply { error: Some(e), .. }) => Err(start_error(&e)),
        _ => Err(EngineError::internal(format!(
            "the shim sent an unreadable report {:?}; see {}",
            line.trim(),
            state_dir.join("shim.log").display()
        ))),
    }
}

enum ZygoteError {
    /// Nothing was sent: safe to fall back to exec'ing the shim.
    Unreachable(std::io::Error),
    /// The request went out but no report came back: a shim may have run, do not retry.
    Lost(std::io::Error),
}

/// One request to the zygote: the shim's arguments as a JSON line; its report comes back on
/// the same connection, written by the forked shim itself.
async fn via_zygote(
    sock: &Path,
    args: &[String],
    mut early: Option<tokio::sync::oneshot::Sender<i32>>,
) -> std::result::Result<String, ZygoteError> {
    let mut stream = UnixStream::connect(sock)
        .await
        .map_err(ZygoteError::Unreachable)?;
    let mut req = serde_json::to_vec(args).expect("strings serialize");
    req.push(b'\n');
    stream
        .write_all(&req)
        .await
        .map_err(ZygoteError::Unreachable)?;
    // Only the shim's lines come back on this connection (nothing follows its report), so
    // it is read buffered, not byte by byte like a shim request's reply.
    let mut reader = tokio::io::BufReader::with_capacity(4096, stream);
    loop {
        let mut line = String::new();
        let n = tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)
            .await
            .map_err(ZygoteError::Lost)?;
        if n == 0 {
            return Err(ZygoteError::Lost(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "shim closed the connection",
            )));
        }
        let line = line.trim_end().to_string();
        #[derive(Deserialize)]
        struct Early {
            early_pid: i32,
        }
        match serde_json::from_str::<Early>(&line) {
            Ok(e) => {
                if let Some(tx) = early.take() {
                    let _ = tx.send(e.early_pid);
                }
            }
            Err(_) => return Ok(line),
        }
    }
}

/// The program that runs `<program> shim ARGS`: the small `berth-shim` beside the berth
/// binary (half the memory of an idle `berth shim`) when it reports the same `--build-id` as
/// `berth shim` (built from the same sources), else the berth binary itself. Decided once per
/// berth binary; a stale or missing `berth-shim` falls back silently.
pub(crate) fn shim_program(berth: &Path) -> PathBuf {
    use std::sync::Mutex;
    static CHOICE: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);
    let mut choice = CHOICE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((b, p)) = choice.as_ref() {
        if b == berth {
            return p.clone();
        }
    }
    let build_id = |p: &Path, args: &[&str]| {
        std::process::Command::new(p)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|id| !id.is_empty())
    };
    let small = berth.with_file_name("berth-shim");
    let small_id = small
        .is_file()
        .then(|| build_id(&small, &["--build-id"]))
        .flatten();
    let program = if small_id.is_some() && small_id == build_id(berth, &["shim", "--build-id"]) {
        small
    } else {
        berth.to_path_buf()
    };
    tracing::debug!(program = %program.display(), "shim program");
    *choice = Some((berth.to_path_buf(), program.clone()));
    program
}

/// A runtime start error in Docker's words (the CLI maps "executable file not found" and
/// "no such file or directory" to 127, "permission denied" to 126).
pub fn start_error(message: &str) -> EngineError {
    let msg = format!(
        "failed to create task for container: OCI runtime create failed: {message}: unknown"
    );
    match classify(message) {
        SpawnFailure::Other => EngineError::internal(msg),
        _ => EngineError::invalid(msg),
    }
}

/// A connection with its request sent and the reply line read.
pub struct Reply {
    pub line: String,
    pub stream: UnixStream,
}

async fn read_line(stream: &mut UnixStream) -> std::io::Result<String> {
    // Byte by byte: whatever follows the line (attach frames) must stay in the socket.
    let mut buf = Vec::with_capacity(32);
    let mut b = [0u8; 1];
    loop {
        let n = stream.read(&mut b).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "shim closed the connection",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        buf.push(b[0]);
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "shim reply too long",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Send one request; return the reply line (`OK ...`, `EXIT ...`), or the `ERR` as an error.
pub async fn request(state_dir: &Path, line: &str) -> Result<Reply> {
    let sock = state_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&sock).await.map_err(|e| {
        EngineError::internal(format!("cannot reach the shim at {}: {e}", sock.display()))
    })?;
    let mut req = line.as_bytes().to_vec();
    req.push(b'\n');
    stream
        .write_all(&req)
        .await
        .map_err(|e| EngineError::internal(format!("shim request failed: {e}")))?;
    let reply = read_line(&mut stream)
        .await
        .map_err(|e| EngineError::internal(format!("shim request {:?} failed: {e}", verb(line))))?;
    if let Some(err) = reply.strip_prefix("ERR") {
        return Err(EngineError::internal(err.trim().to_string()));
    }
    Ok(Reply {
        line: reply,
        stream,
    })
}

fn verb(line: &str) -> &str {
    line.split(' ').next().unwrap_or(line)
}

fn ok_pid(reply: &str) -> Result<i32> {
    reply
        .strip_prefix("OK ")
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| EngineError::internal(format!("bad shim reply {reply:?}")))
}

/// `START` → the container's pid.
pub async fn start(state_dir: &Path) -> Result<i32> {
    let r = request(state_dir, "START")
        .await
        .map_err(|e| start_error(&e.message))?;
    ok_pid(&r.line)
}

/// `KILL <sig>`.
pub async fn kill(state_dir: &Path, signal: i32) -> Result<()> {
    request(state_dir, &format!("KILL {signal}"))
        .await
        .map(|_| ())
}

/// `RESIZE`.
pub async fn resize(state_dir: &Path, rows: u16, cols: u16) -> Result<()> {
    request(state_dir, &format!("RESIZE {rows} {cols}"))
        .await
        .map(|_| ())
}

/// `RESIZE-EXEC`.
pub async fn resize_exec(state_dir: &Path, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
    request(state_dir, &format!("RESIZE-EXEC {exec_id} {rows} {cols}"))
        .await
        .map(|_| ())
}

/// `ATTACH` → the stream (frames follow).
/// `stdin_once`: the container's StdinOnce (close its stdin when the last stdin attacher
/// leaves); sent only when off, which shims from before the option did not know.
pub async fn attach(
    state_dir: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    logs: bool,
    stdin_once: bool,
) -> Result<UnixStream> {
    let b = |x: bool| if x { 1 } else { 0 };
    let r = request(
        state_dir,
        &format!(
            "ATTACH stdin={} stdout={} stderr={} logs={}{}",
            b(stdin),
            b(stdout),
            b(stderr),
            b(logs),
            if stdin_once { "" } else { " stdin_once=0" }
        ),
    )
    .await?;
    Ok(r.stream)
}

/// `EXEC <json>` → (pid, stream).
pub async fn exec(state_dir: &Path, request_json: &str) -> Result<(i32, UnixStream)> {
    let r = request(state_dir, &format!("EXEC {request_json}")).await?;
    Ok((ok_pid(&r.line)?, r.stream))
}

/// An open `WAIT`: resolves to (exit code, oom killed), or an error when the shim went away.
pub async fn wait(state_dir: &Path) -> Result<UnixStream> {
    let sock = state_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&sock).await.map_err(|e| {
        EngineError::internal(format!("cannot reach the shim at {}: {e}", sock.display()))
    })?;
    stream
        .write_all(b"WAIT\n")
        .await
        .map_err(|e| EngineError::internal(format!("shim WAIT failed: {e}")))?;
    Ok(stream)
}

/// Read the `EXIT <code> <oom>` line of an open `WAIT`.
pub async fn wait_result(mut stream: UnixStream) -> Result<(i32, bool)> {
    let line = read_line(&mut stream)
        .await
        .map_err(|e| EngineError::internal(format!("shim WAIT failed: {e}")))?;
    parse_exit(&line)
}

pub fn parse_exit(line: &str) -> Result<(i32, bool)> {
    let mut it = line.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some("EXIT"), Some(code), oom) => {
            let code = code
                .parse()
                .map_err(|_| EngineError::internal(format!("bad shim reply {line:?}")))?;
            Ok((code, oom == Some("1")))
        }
        _ => Err(EngineError::internal(format!("bad shim reply {line:?}"))),
    }
}

pub fn read_shim_record(state_dir: &Path) -> Option<ShimRecord> {
    crate::store::read_json(&state_dir.join(SHIM_JSON)).ok()
}

pub fn read_exit_record(state_dir: &Path) -> Option<ExitRecord> {
    crate::store::read_json(&state_dir.join(EXIT_JSON)).ok()
}

/// The file where the shim records how an exec ended (berth-shim's `records::exec_json`).
pub fn exec_exit_file(state_dir: &Path, exec_id: &str) -> PathBuf {
    state_dir.join(format!("exec-{exec_id}.json"))
}

/// The exit code the shim recorded for an exec, if it has ended.
pub fn read_exec_exit(file: &Path) -> Option<i32> {
    #[derive(serde::Deserialize)]
    struct ExecExit {
        exit_code: i32,
    }
    crate::store::read_json::<ExecExit>(file)
        .ok()
        .map(|x| x.exit_code)
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && PathBuf::from(format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_lines() {
        assert_eq!(parse_exit("EXIT 3 0").unwrap(), (3, false));
        assert_eq!(parse_exit("EXIT 137 1").unwrap(), (137, true));
        assert!(parse_exit("OK 1").is_err());
        assert!(parse_exit("EXIT x 0").is_err());
    }

    #[test]
    fn errors_classify_like_docker() {
        let e = start_error("exec: \"nosuch\": executable file not found in $PATH");
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
        assert!(e.message.contains("executable file not found"));
        assert_eq!(
            classify("open /x: permission denied"),
            SpawnFailure::PermissionDenied
        );
        assert_eq!(classify("boom"), SpawnFailure::Other);
    }

    #[tokio::test]
    async fn request_against_a_fake_shim() {
        let dir = tempfile::tempdir().unwrap();
        let l = tokio::net::UnixListener::bind(dir.path().join(SOCKET)).unwrap();
        let server = tokio::spawn(async move {
            for reply in ["OK 42\n", "ERR no such process\n", "EXIT 3 1\n"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(start(dir.path()).await.unwrap(), 42);
        let e = kill(dir.path(), 9).await.unwrap_err();
        assert_eq!(e.message, "no such process");
        let w = wait(dir.path()).await.unwrap();
        assert_eq!(wait_result(w).await.unwrap(), (3, true));
        server.await.unwrap();
    }
}
