//! Pumping a hijacked stream: local stdin → container, container output → local
//! stdout/stderr (demultiplexed without a TTY), half-close when stdin ends.

use std::io::Write;

use berth_api::stream::{FrameDecoder, StreamType};
use berth_client::{Client, Hijacked, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Failure;

/// Reads stdin on a plain thread (a blocking read must not hold the async runtime, and the
/// thread dies with the process) and hands chunks over a channel; `None` = EOF.
fn stdin_channel() -> tokio::sync::mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Runs until the container's output ends. With `send_stdin`, local stdin is forwarded
/// and its EOF half-closes the connection (the container's stdin closes, output continues).
pub async fn pump(io: Hijacked, tty: bool, send_stdin: bool) -> Result<(), Failure> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let input = async move {
        if send_stdin {
            let mut rx = stdin_channel();
            while let Some(Some(chunk)) = rx.recv().await {
                if wr.write_all(&chunk).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        }
        // Keep the write half open (dropping it would not close it anyway) until output ends.
        std::future::pending::<()>().await;
    };
    let output = async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut dec = FrameDecoder::new();
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) => {
                    return Err(Failure::new(
                        1,
                        format!("reading the container's output: {e}"),
                    ))
                }
            };
            if tty {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
                continue;
            }
            dec.push(&buf[..n]);
            loop {
                match dec.next_frame() {
                    Ok(Some((StreamType::Stderr, p))) => {
                        let mut e = std::io::stderr().lock();
                        let _ = e.write_all(&p);
                        let _ = e.flush();
                    }
                    Ok(Some((StreamType::SystemErr, p))) => {
                        return Err(Failure::new(
                            1,
                            String::from_utf8_lossy(&p).trim().to_string(),
                        ));
                    }
                    Ok(Some((_, p))) => {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(&p);
                        let _ = o.flush();
                    }
                    Ok(None) => break,
                    Err(e) => return Err(Failure::new(1, e.to_string())),
                }
            }
        }
    };
    tokio::select! {
        r = output => r,
        _ = input => Ok(()),
    }
}

/// Sends the local terminal size now and on every SIGWINCH (`path` is the resize endpoint).
pub fn forward_resize(c: &Client, path: String) {
    let c = c.clone();
    tokio::spawn(async move {
        let send = |c: Client, path: String| async move {
            if let Some((h, w)) = crate::tty::size() {
                let q = Query::new().add("h", h).add("w", w).encode();
                // The process may not exist yet: retry briefly like the docker CLI does.
                for i in 0..10u64 {
                    if c.post_status(&format!("{path}{q}")).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10 * (i + 1))).await;
                }
            }
        };
        send(c.clone(), path.clone()).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            send(c.clone(), path.clone()).await;
        }
    });
}

/// Forwards SIGINT/SIGTERM to the container (`--sig-proxy`, on by default without a TTY).
pub fn proxy_signals(c: &Client, id: String) {
    let c = c.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = c
                .post_status(&format!("/containers/{id}/kill?signal={sig}"))
                .await;
        }
    });
}
