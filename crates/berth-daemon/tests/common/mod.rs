//! What the in-process daemon tests share.

use std::future::Future;

/// Runs `test` on a runtime like the daemon's, with the shim zygote turned off: in-process,
/// the engine's berth binary is the test binary itself (`current_exe`), which must never be
/// started as `shim zygote --socket ...` (the test harness would refuse the flags, or worse,
/// take the words for test filters and run the suite again). The variable is set before the
/// runtime's threads exist, so no thread reads the environment while it changes.
pub fn in_process<F: Future>(test: F) -> F::Output {
    std::env::set_var("BERTH_NO_SHIM_ZYGOTE", "1");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

/// An in-process daemon's state and where it lives.
pub struct Opened {
    /// The data root's parent (also the socket's directory) and the exec root, removed when
    /// this is dropped.
    _roots: (tempfile::TempDir, tempfile::TempDir),
    pub sock: std::path::PathBuf,
    pub state: berth_daemon::AppState,
}

/// An in-process daemon's state, from flags parsed like the command line (so new flags with
/// defaults never break a test): fresh data and exec roots, a unique cgroup parent and no
/// bridge. `None` (the test says why and is skipped) when the engine cannot open here.
pub async fn open_state() -> Option<Opened> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exec = tempfile::Builder::new()
        .prefix("bd")
        .tempdir_in("/tmp")
        .expect("exec root");
    let sock = dir.path().join("d.sock");
    let args = <berth_daemon::DaemonArgs as clap::Parser>::try_parse_from([
        "berth daemon".to_string(),
        format!("--data-root={}", dir.path().join("data").display()),
        format!("--exec-root={}", exec.path().display()),
        format!("--host=unix://{}", sock.display()),
        format!("--cgroup-parent=/{}", berth_testkit::unique::name("bdtest")),
        "--bridge=none".to_string(),
        "--log-level=warn".to_string(),
    ])
    .expect("daemon flags");
    match berth_daemon::open_state(&args).await {
        Ok(state) => Some(Opened {
            _roots: (dir, exec),
            sock,
            state,
        }),
        Err(e) => {
            eprintln!("skipping: the engine cannot open here: {e}");
            None
        }
    }
}

/// One HTTP/1.1 request over the daemon's socket with `Connection: close`; (status, head,
/// the rest). Bounded: a daemon that does not answer within `limit` fails the test instead of
/// hanging it.
pub async fn raw_request(
    sock: &std::path::Path,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
    limit: std::time::Duration,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(sock)
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no reply to {method} {path} within {limit:?}"))
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), rest.to_string())
}
