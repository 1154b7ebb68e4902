//! The shim zygote: one small single-threaded process per daemon that forks a detached shim
//! per container on request.
//!
//! Why: starting a shim the plain way costs an `execve` of the shim binary, its dynamic
//! loading and relocation, a launcher fork and the daemon's reaping of the launcher, about
//! 2.5 ms of every `run` here. The zygote has paid all of that once; a `fork` of it (a process
//! that has touched little memory) costs ~0.1 ms. The daemon falls back to the exec'd launcher
//! whenever the zygote is not there.
//!
//! Protocol on `SOCKET` (a unix stream socket, mode 0600, peers must have the zygote's uid):
//! one connection per shim; the daemon writes one line, a JSON array of `berth shim`
//! arguments, and reads one line back, the launcher's JSON reply
//! ([`crate::launch::LaunchReply`]). The connection itself is the forked shim's report
//! channel: the zygote hands it over as the shim's stdout and goes back to `accept`, so one
//! slow container create never delays another.
//!
//! The zygote exits when its stdin reaches EOF: the daemon holds the other end of that pipe,
//! so a dead daemon takes its zygote with it (the shims, in their own sessions, live on).
//! Exited shims are reaped here (they are the zygote's children until it exits; then init's).

use crate::args::Config;
use crate::launch::{self, LaunchReply};
use rustix::event::{PollFd, PollFlags};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// The longest request line accepted (a shim's argv is a few hundred bytes).
const MAX_REQUEST: u64 = 64 * 1024;

/// `berth shim zygote --socket PATH`: serve until stdin closes. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let path = match args {
        [flag, p] if flag == "--socket" => Path::new(p),
        _ => {
            eprintln!("usage: berth shim zygote --socket PATH");
            return 2;
        }
    };
    let listener = match bind(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth shim zygote: listen on {}: {e}", path.display());
            return 1;
        }
    };
    // Detected once here, inherited by every forked shim and its runtime helper, which would
    // otherwise read /proc/self/mountinfo on each create (see `Layout::host`). A host
    // without cgroups fails later, per container, with the real error.
    let _ = berth_cgroups::Layout::host();
    let stdin = std::io::stdin();
    // Like a shim (see `Server::release`): the code of the zygote's set-up and of each
    // fork's request is dropped from its page tables once it is idle; its loop is all it keeps.
    let mut release = berth_sys::memory::IdleRelease::new(crate::RELEASE_AFTER_IDLE);
    loop {
        let _ = release.release_if_due();
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::new(&stdin, PollFlags::IN),
        ];
        // Wake up now and then to reap shims that exited.
        let ts = rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let (conn_ready, daemon_gone) =
            (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        reap();
        if daemon_gone {
            // EOF (or anything else) on the pipe from the daemon: it is gone.
            return 0;
        }
        if conn_ready {
            if let Ok((conn, _)) = listener.accept() {
                serve_one(conn);
                release.touch();
            }
        }
    }
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use nix::sys::stat::{umask, Mode};
    let _ = std::fs::remove_file(path);
    // Born 0600: with a chmod after bind, the socket was briefly 0755 and a connect could
    // race in (the peer uid check still refused it). The zygote is single-threaded here.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let l = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Reap every exited shim without blocking.
fn reap() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn reply(conn: &mut UnixStream, r: &LaunchReply) {
    let _ = writeln!(conn, "{}", serde_json::to_string(r).unwrap_or_default());
}

/// Read one request and fork its shim; the connection goes to the shim.
fn serve_one(mut conn: UnixStream) {
    let forked = request(&conn).and_then(|(cfg, shim_end)| launch::fork_detached(&cfg, shim_end));
    if let Err(e) = forked {
        reply(&mut conn, &e);
    }
    // Our copy of the connection closes here; the shim holds its own.
}

/// Check the peer, read its one line: the shim's config and the shim's end of the connection.
fn request(conn: &UnixStream) -> Result<(Config, UnixStream), LaunchReply> {
    let own_uid = nix::unistd::geteuid().as_raw();
    match rustix::net::sockopt::socket_peercred(conn) {
        Ok(c) if c.uid.as_raw() == own_uid => {}
        _ => {
            return Err(launch::err(
                "failed",
                "the shim zygote serves only its own user".into(),
            ))
        }
    }
    // The daemon writes its line right after connecting; do not let a stuck peer hold us.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let read = BufReader::new(conn.take(MAX_REQUEST)).read_line(&mut line);
    let args: Vec<String> = read
        .ok()
        .and_then(|_| serde_json::from_str(line.trim()).ok())
        .ok_or_else(|| {
            launch::err(
                "invalid_argument",
                "the shim zygote expects one line: a JSON array of shim arguments".into(),
            )
        })?;
    let cfg = Config::parse(&args).map_err(|e| launch::err("invalid_argument", e))?;
    let _ = conn.set_read_timeout(None);
    let shim_end = conn
        .try_clone()
        .map_err(|e| launch::err("failed", format!("duplicate the connection: {e}")))?;
    Ok((cfg, shim_end))
}
