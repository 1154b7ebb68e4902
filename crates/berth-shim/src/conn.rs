//! The shim's connections and stdio ends: who a byte stream belongs to, a process's stdin
//! with its backlog, and an attach client with its unsent output.

use crate::fdio;
use crate::logfile::Stream;
use crate::protocol::{AttachOpts, Reply};
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Unsent output per attach client before it is dropped.
pub const MAX_CLIENT_BACKLOG: usize = 8 << 20;

/// Whose stdio a source, sink or attach belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    Init,
    Exec(String),
}

/// An output fd of a process (pipe read end, or PTY master).
pub(crate) struct Source {
    pub(crate) fd: OwnedFd,
    pub(crate) stream: Stream,
    pub(crate) owner: Owner,
}

/// A process's stdin (pipe write end, or a dup of the PTY master).
#[derive(Default)]
pub(crate) struct Sink {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) buf: Vec<u8>,
    /// Close once `buf` is written (stdin-once half-close).
    pub(crate) close_when_empty: bool,
}

impl Sink {
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.fd.is_some() && !self.close_when_empty {
            self.buf.extend_from_slice(data);
            self.flush();
        }
    }
    pub(crate) fn flush(&mut self) {
        if let Some(fd) = &self.fd {
            while !self.buf.is_empty() {
                match fdio::write(fd, &self.buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.buf.drain(..n);
                    }
                    Err(_) => {
                        // The process closed its stdin (EPIPE): drop what is pending.
                        self.buf.clear();
                        self.fd = None;
                        return;
                    }
                }
            }
        }
        if self.buf.is_empty() && self.close_when_empty {
            self.fd = None;
        }
    }
}

pub(crate) enum Mode {
    /// Reading the request line.
    Request,
    Attached {
        owner: Owner,
        opts: AttachOpts,
        tty: bool,
    },
    Waiting,
    /// Send what is queued, then close.
    Closing,
}

pub(crate) struct Client {
    pub(crate) sock: UnixStream,
    pub(crate) inbuf: Vec<u8>,
    pub(crate) out: Vec<u8>,
    pub(crate) mode: Mode,
    pub(crate) read_eof: bool,
    pub(crate) dead: bool,
}

impl Client {
    pub(crate) fn send(&mut self, data: &[u8]) {
        if self.dead {
            return;
        }
        if self.out.len() + data.len() > MAX_CLIENT_BACKLOG {
            // A slow client: drop it, never the container's data (the log has it all).
            self.dead = true;
            return;
        }
        self.out.extend_from_slice(data);
    }
    pub(crate) fn reply(&mut self, r: &Reply) {
        self.send(r.to_string().as_bytes());
    }
    pub(crate) fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && matches!(self.mode, Mode::Closing) {
            self.dead = true;
        }
    }
}

pub(crate) struct ExecSession {
    pub(crate) pid: i32,
    pub(crate) master: Option<OwnedFd>,
    pub(crate) stdin: Sink,
    pub(crate) exit: Option<(i32, Instant)>,
}
