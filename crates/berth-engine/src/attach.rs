//! The duplex a client gets from `attach` and `exec start`: bytes to the process's stdin,
//! Docker-multiplexed frames (or raw bytes with a TTY) from its stdout/stderr.
//! Shutting down the write half closes the process's stdin (half-close).

use tokio::io::{AsyncRead, AsyncWrite};

/// Anything that is a duplex byte stream.
pub trait AttachIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AttachIo for T {}

/// A hijacked stream to a container's (or exec's) stdio.
pub struct AttachStream {
    pub io: Box<dyn AttachIo>,
    /// With a TTY the output is raw bytes; without, Docker's multiplexed frames.
    pub tty: bool,
}

impl std::fmt::Debug for AttachStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachStream")
            .field("tty", &self.tty)
            .finish()
    }
}

/// An attach made before the container's shim exists; connected at start.
pub(crate) struct PendingAttach {
    pub opts: crate::options::AttachOptions,
    pub io: tokio::io::DuplexStream,
}

/// Pipe a client duplex to a shim stream until both directions end (EOF on one side
/// shuts down the other's write half, which the shim takes as "close stdin").
pub(crate) fn splice(mut client: tokio::io::DuplexStream, mut shim: tokio::net::UnixStream) {
    tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut shim).await;
    });
}
