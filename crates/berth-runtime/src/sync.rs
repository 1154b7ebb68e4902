//! The parent ↔ init conversation over a `SOCK_SEQPACKET` socketpair: one JSON message per
//! packet, file descriptors (the terminal master) riding along with SCM_RIGHTS.
//!
//! ```text
//! helper → parent   Pid            (the init's pid, then the helper exits)
//! parent → init     Go             (uid/gid maps written, cgroups joined)
//! init   → parent   CreateRuntime  (mounts done, before pivot_root: run createRuntime hooks)
//! parent → init     Go
//! init   → parent   Console + fd   (only with a terminal)
//! init   → parent   Ready          (everything set up; now blocking on exec.fifo)
//! any    → parent   Error          (setup failed; the sender exits)
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Msg {
    Pid(i32),
    Go,
    /// Go, carrying the OCI state JSON for the hooks the init runs itself.
    GoWithState(String),
    CreateRuntime,
    /// The terminal master rides along; the payload is the slave's name.
    Console(String),
    Ready,
    /// The init's own steps before Ready (name, microseconds), for the start timeline.
    Phases(Vec<(String, u64)>),
    /// `kind`: "not-found", "not-executable" or "other".
    Error {
        kind: String,
        message: String,
    },
}

pub(crate) fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::io("socketpair", e))
}

pub(crate) fn send(sock: BorrowedFd<'_>, msg: &Msg) -> std::io::Result<()> {
    let data = serde_json::to_vec(msg).expect("msg serializes");
    let n = nix::sys::socket::send(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &data,
        nix::sys::socket::MsgFlags::empty(),
    )?;
    if n != data.len() {
        return Err(std::io::Error::other("short write on sync socket"));
    }
    Ok(())
}

pub(crate) fn send_with_fd(
    sock: BorrowedFd<'_>,
    msg: &Msg,
    fd: BorrowedFd<'_>,
) -> std::io::Result<()> {
    let data = serde_json::to_vec(msg).expect("msg serializes");
    berth_sys::send_fd(sock, &data, fd)
}

/// Receive one message and the descriptor riding with it, if any; `None` on EOF (the peer
/// exited). Always read with room for SCM_RIGHTS so a descriptor is never dropped.
pub(crate) fn recv(sock: BorrowedFd<'_>) -> std::io::Result<Option<(Msg, Option<OwnedFd>)>> {
    let (data, mut fds) = berth_sys::recv_with_fds(sock)?;
    if data.is_empty() {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds.pop())))
}

/// Child side: wait for the parent's `Go` (anything else, or EOF, means abort).
pub(crate) fn wait_go(sock: BorrowedFd<'_>) -> std::io::Result<Option<String>> {
    match recv(sock)? {
        Some((Msg::Go, _)) => Ok(None),
        Some((Msg::GoWithState(s), _)) => Ok(Some(s)),
        _ => Err(std::io::Error::other("parent aborted container setup")),
    }
}

/// Turn an `Error` message from the child into our error type.
pub(crate) fn child_error(kind: &str, message: String) -> Error {
    match kind {
        "not-found" => Error::CommandNotFound(message),
        "not-executable" => Error::CommandNotExecutable(message),
        _ => Error::Init(message),
    }
}

/// Child side: report a failure to the parent (best effort; the child exits next).
pub(crate) fn report(sock: &impl AsFd, err: &Error) {
    let kind = match err {
        Error::CommandNotFound(_) => "not-found",
        Error::CommandNotExecutable(_) => "not-executable",
        _ => "other",
    };
    let message = match err {
        Error::CommandNotFound(c) | Error::CommandNotExecutable(c) => c.clone(),
        e => e.to_string(),
    };
    let _ = send(
        sock.as_fd(),
        &Msg::Error {
            kind: kind.into(),
            message,
        },
    );
}

/// Parent side: send `msg`; if the child is gone, return the error it left on the socket.
pub(crate) fn send_or_child_error(sock: BorrowedFd<'_>, msg: &Msg) -> crate::error::Result<()> {
    match send(sock, msg) {
        Ok(()) => Ok(()),
        Err(e) => match recv(sock) {
            Ok(Some((Msg::Error { kind, message }, _))) => Err(child_error(&kind, message)),
            _ => Err(Error::io("container init exited during setup", e)),
        },
    }
}
