//! An exec's events as dockerd writes them: `exec_create: <cmd>`, `exec_start: <cmd>` and,
//! once its process ended, `exec_die` with `execID` and `exitCode`.
//!
//! The end of an attached exec is the end of its output stream: the shim records the exit
//! code before it closes the stream (so `exec inspect` right after the output has it), and
//! [`ExitWatch`] notices that end as the daemon reads the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The action of an `exec_create` / `exec_start` event, as moby writes it:
/// `<kind>: <entrypoint> <args joined by spaces>`, so a command without arguments keeps a
/// trailing space (`exec_start: true `).
pub(crate) fn exec_action(kind: &str, argv: &[String]) -> String {
    let (entrypoint, args) = argv.split_first().map_or(("", &[][..]), |(e, a)| (e, a));
    format!("{kind}: {entrypoint} {}", args.join(" "))
}

/// An exec's stream that runs `on_end` once, when a read reaches its end.
pub(crate) struct ExitWatch<S> {
    inner: S,
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<S> ExitWatch<S> {
    pub fn new(inner: S, on_end: impl FnOnce() + Send + 'static) -> Self {
        ExitWatch {
            inner,
            on_end: Some(Box::new(on_end)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ExitWatch<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            if buf.filled().len() == before && buf.remaining() > 0 {
                if let Some(f) = self.on_end.take() {
                    f();
                }
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ExitWatch<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn actions_in_mobys_form() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_action("exec_create", &argv(&["/bin/sh", "-c", "curl -f x"])),
            "exec_create: /bin/sh -c curl -f x"
        );
        assert_eq!(
            exec_action("exec_start", &argv(&["true"])),
            "exec_start: true "
        );
        assert_eq!(exec_action("exec_start", &[]), "exec_start:  ");
    }

    #[tokio::test]
    async fn the_end_is_seen_once_at_eof_and_writes_pass_through() {
        let (a, mut b) = tokio::io::duplex(64);
        let ends = Arc::new(AtomicUsize::new(0));
        let n = ends.clone();
        let mut w = ExitWatch::new(a, move || {
            n.fetch_add(1, Ordering::SeqCst);
        });
        b.write_all(b"out").await.unwrap();
        let mut buf = [0u8; 3];
        w.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"out");
        w.write_all(b"in").await.unwrap();
        let mut got = [0u8; 2];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"in");
        // A zero-length read is not the end.
        let mut empty = [0u8; 0];
        let _ = w.read(&mut empty).await.unwrap();
        assert_eq!(ends.load(Ordering::SeqCst), 0);
        drop(b);
        let mut rest = Vec::new();
        w.read_to_end(&mut rest).await.unwrap();
        let _ = w.read(&mut [0u8; 8]).await.unwrap();
        assert_eq!(ends.load(Ordering::SeqCst), 1);
    }
}
