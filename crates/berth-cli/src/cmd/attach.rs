//! Pumping a hijacked stream: local stdin → container, container output → local
//! stdout/stderr (demultiplexed without a TTY), half-close when stdin ends; the detach keys
//! on a terminal (`crate::detach`). Also the `attach` verb.

use std::io::Write;

use berth_api::container::{ContainerInspect, ContainerWaitResponse};
use berth_api::stream::{FrameDecoder, StreamType};
use berth_client::{Client, Hijacked, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::AttachArgs;
use crate::detach::EscapeScanner;
use crate::{CmdResult, Failure};

/// How a hijacked session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The container's output ended.
    OutputDone,
    /// The user typed the detach keys; the container keeps running.
    Detached,
}

/// docker's `CheckTty`: `-t` with stdin attached needs a terminal on stdin.
pub fn check_tty(attach_stdin: bool, tty: bool) -> Result<(), Failure> {
    if tty && attach_stdin && !crate::tty::stdin_is_tty() {
        return Err(Failure::new(1, "the input device is not a TTY"));
    }
    Ok(())
}

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
/// With `detach` keys (a TTY), typing them ends the session at once: `Detached`.
pub async fn pump(
    io: Hijacked,
    tty: bool,
    send_stdin: bool,
    detach: Option<Vec<u8>>,
) -> Result<SessionEnd, Failure> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let input = async move {
        if send_stdin {
            let mut rx = stdin_channel();
            let mut scan = detach.map(EscapeScanner::new);
            while let Some(Some(chunk)) = rx.recv().await {
                let (data, detached) = match scan.as_mut() {
                    Some(s) => s.feed(&chunk),
                    None => (chunk, false),
                };
                if !data.is_empty()
                    && (wr.write_all(&data).await.is_err() || wr.flush().await.is_err())
                {
                    break;
                }
                if detached {
                    return SessionEnd::Detached;
                }
            }
            let _ = wr.shutdown().await;
        }
        // Keep the write half open (dropping it would not close it anyway) until output ends.
        std::future::pending::<SessionEnd>().await
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
        r = output => r.map(|()| SessionEnd::OutputDone),
        d = input => Ok(d),
    }
}

/// `attach CONTAINER`, as docker's `RunAttach`: wait registered first, the state checked,
/// stdin only if the container keeps it open; the exit code of the container when its output
/// ends, `read escape sequence` (exit 1) after a detach.
pub async fn attach(c: &Client, a: AttachArgs) -> CmdResult {
    let name = &a.container;
    let detach_keys = crate::detach::effective(a.detach_keys.as_deref());
    let mut wait = c
        .post_stream(
            &format!("/containers/{name}/wait"),
            Client::empty_body(),
            None,
            &[],
        )
        .await?;
    let check = |i: &ContainerInspect| -> Result<(), Failure> {
        let s = &i.state;
        let msg = if !s.running {
            "cannot attach to a stopped container, start it first"
        } else if s.paused {
            "cannot attach to a paused container, unpause it first"
        } else if s.restarting {
            "cannot attach to a restarting container, wait until it is running"
        } else {
            return Ok(());
        };
        Err(Failure::new(1, msg))
    };
    let i: ContainerInspect = c.get_json(&format!("/containers/{name}/json")).await?;
    check(&i)?;
    let tty = i.config.tty;
    check_tty(!a.no_stdin, tty)?;
    let stdin = !a.no_stdin && i.config.open_stdin;
    let q = Query::new()
        .add("stream", 1)
        .flag("stdin", stdin)
        .add("stdout", 1)
        .add("stderr", 1)
        .opt("detachKeys", detach_keys.clone())
        .encode();
    if a.sig_proxy && !tty {
        proxy_signals(c, i.id.clone());
    }
    let io = c
        .hijack(&format!("/containers/{}/attach{q}", i.id), None)
        .await?;
    let i: ContainerInspect = c.get_json(&format!("/containers/{}/json", i.id)).await?;
    check(&i)?;
    let _raw = if tty && stdin && crate::tty::stdin_is_tty() {
        crate::tty::RawMode::enable()
    } else {
        None
    };
    if tty && crate::tty::stdout_is_tty() {
        forward_resize(c, format!("/containers/{}/resize", i.id));
    }
    let keys = (tty && stdin).then(|| crate::detach::keys_or_default(detach_keys.as_deref()));
    if pump(io, tty, stdin, keys).await? == SessionEnd::Detached {
        drop(_raw);
        return Err(Failure::new(1, crate::detach::ESCAPE_MESSAGE));
    }
    let status = wait
        .next_json::<ContainerWaitResponse>()
        .await?
        .ok_or_else(|| Failure::new(1, "the daemon closed the wait stream without a status"))?;
    if let Some(err) = status.error.filter(|e| !e.message.is_empty()) {
        return Err(Failure::new(1, err.message));
    }
    Ok(status.status_code as i32)
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
