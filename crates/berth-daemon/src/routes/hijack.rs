//! The hijacked endpoints: `POST /containers/{id}/attach` and `POST /exec/{id}/start`.
//!
//! The client sends `Connection: Upgrade` + `Upgrade: tcp`; the daemon answers `101` and
//! from then on the connection is a raw duplex: client bytes go to the process's stdin,
//! the process's output comes back (multiplexed frames without a TTY, raw with one).
//! When the client half-closes (`shutdown(SHUT_WR)` after its stdin hit EOF), the process's
//! stdin is closed and output keeps flowing until the process is done; only then does the
//! daemon close the connection. Old clients without `Upgrade` get `200` and the output as
//! the body.
//!
//! With a TTY and stdin attached, the client's EOF ends the whole session instead (dockerd: "no matter what,
//! when stdin is closed, close stdout and stderr"): the docker CLI detects the detach keys
//! itself on a terminal and just goes away, and the container's stdin must stay open for
//! the next attach. A session without stdin ignores the client's EOF (`docker run -t`
//! half-closes at once). Without a TTY the daemon finds the detach keys in the stdin bytes
//! (`detachKeys`, `ctrl-p,ctrl-q` by default; an exec's `DetachKeys` from its create) and
//! ends the session the same way.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::exec::ExecStartRequest;
use berth_engine::{AttachOptions, AttachStream, ExecStartOptions};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::containers::stream_content_type;
use super::parse_json;
use crate::error::{ApiError, ApiResult};
use crate::prefix::RequestVersion;
use crate::query::Q;
use crate::state::AppState;

pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(version): axum::Extension<RequestVersion>,
    q: Q,
    req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
        stream: q.bool("stream"),
    };
    let keys = detach_keys(q.str("detachKeys").unwrap_or(""))?;
    let keys = if !opts.stdin {
        None
    } else if keys.is_empty() {
        Some(detach_keys(DEFAULT_DETACH_KEYS)?)
    } else {
        Some(keys)
    };
    let stream = state.engine.attach_container(&id, opts).await?;
    Ok(hijack(req, stream, version, keys))
}

/// Docker's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = berth_api::detach::DEFAULT_SPEC;

/// `ctrl-p,ctrl-q` → `[0x10, 0x11]` (moby's `term.ToBytes`); a bad spelling is Docker's 400.
pub fn detach_keys(spec: &str) -> ApiResult<Vec<u8>> {
    berth_api::detach::parse_keys(spec)
        .map_err(|_| ApiError::bad_request(format!("Invalid detach keys ({spec}) provided")))
}

pub async fn exec_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(version): axum::Extension<RequestVersion>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
    let start: ExecStartRequest = parse_json(&bytes)?;
    // The exec's own detach keys (validated at create), for a hijacked start with stdin.
    let keys = match state.engine.exec_inspect(&id).await {
        Ok(rec) if rec.spec.attach_stdin => {
            let k = detach_keys(&rec.spec.detach_keys)?;
            Some(if k.is_empty() {
                detach_keys(DEFAULT_DETACH_KEYS)?
            } else {
                k
            })
        }
        _ => None,
    };
    let console_size = start.console_size.as_deref().and_then(|s| match s {
        [h, w] => Some((u16::try_from(*h).ok()?, u16::try_from(*w).ok()?)),
        _ => None,
    });
    let opts = ExecStartOptions {
        detach: start.detach,
        console_size,
    };
    if !start.detach && parts.headers.contains_key(header::UPGRADE) {
        return exec_start_hijacked(state, id, opts, version, parts, keys).await;
    }
    let stream = state.engine.exec_start(&id, opts).await?;
    match stream {
        None => Ok(StatusCode::OK.into_response()),
        Some(s) => Ok(hijack(
            Request::from_parts(parts, Body::empty()),
            s,
            version,
            keys,
        )),
    }
}

/// A hijacked exec start: the process starts only once the 101 head is on the wire, as
/// dockerd does. docker-py parses the 101 with a buffered HTTP reader and then reads the raw
/// socket, so output that arrived in the same segment as the head would be lost (seen as an
/// empty `exec_run` result). Errors found before the hijack are still HTTP statuses; a start
/// that fails after it writes the message into the stream, as dockerd does.
async fn exec_start_hijacked(
    state: AppState,
    id: String,
    opts: ExecStartOptions,
    version: RequestVersion,
    parts: axum::http::request::Parts,
    keys: Option<Vec<u8>>,
) -> ApiResult<Response> {
    let rec = state.engine.exec_inspect(&id).await?;
    if rec.pid != 0 {
        return Err(ApiError::from(berth_engine::EngineError::conflict(
            format!("Error: Exec command {id} has already run"),
        )));
    }
    let content_type = stream_content_type(rec.spec.tty, version);
    let on_upgrade = hyper::upgrade::on(Request::from_parts(parts, Body::empty()));
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::warn!("exec hijack upgrade failed: {e}"),
        };
        let mut io = TokioIo::new(upgraded);
        match state.engine.exec_start(&id, opts).await {
            Ok(Some(stream)) => pump(io, stream, keys).await,
            Ok(None) => {}
            Err(e) => {
                let _ = io.write_all(format!("{}\n", e.message).as_bytes()).await;
                let _ = io.shutdown().await;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

/// Answers 101 and pumps bytes both ways once hyper hands over the connection. `detach` is
/// the detach sequence when stdin is attached, `None` when it is not.
fn hijack(
    req: Request,
    stream: AttachStream,
    version: RequestVersion,
    detach: Option<Vec<u8>>,
) -> Response {
    let content_type = stream_content_type(stream.tty, version);
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    if !wants_upgrade {
        return raw_output(stream, content_type);
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => pump(TokioIo::new(upgraded), stream, detach).await,
            Err(e) => tracing::warn!("hijack upgrade failed: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Client → stdin until the client half-closes (then stdin is closed); output → client
/// until the process's output ends (then the connection is closed). The `detach` sequence
/// in the client's bytes ends the session and leaves the process (and its stdin) alone.
/// `detach` is `None` when the session has no stdin.
async fn pump<C>(client: C, stream: AttachStream, detach: Option<Vec<u8>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let end_on_eof = stream.tty && detach.is_some();
    let detach = detach.unwrap_or_default();
    let (mut ir, mut iw) = tokio::io::split(stream.io);
    let to_process = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut scan = berth_api::detach::EscapeScanner::new(detach);
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (out, detached) = scan.feed(&buf[..n]);
            if !out.is_empty() && (iw.write_all(&out).await.is_err() || iw.flush().await.is_err()) {
                break;
            }
            if detached {
                return;
            }
        }
        if end_on_eof {
            // The session ends; the process's stdin stays open (see the module doc).
            return;
        }
        let _ = iw.shutdown().await;
        std::future::pending::<()>().await;
    };
    let from_process = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match ir.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if cw.write_all(&buf[..n]).await.is_err() || cw.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = from_process => {}
        _ = to_process => {}
    }
    let _ = cw.shutdown().await;
}

/// `200` with the output as the body (clients that did not ask for an upgrade).
fn raw_output(stream: AttachStream, content_type: &'static str) -> Response {
    let (rd, _wr) = tokio::io::split(stream.io);
    let body = futures_util::stream::unfold(rd, |mut rd| async move {
        let mut buf = vec![0u8; 32 * 1024];
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), rd))
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_detach_keys_are_a_400_with_dockers_words() {
        assert_eq!(detach_keys(DEFAULT_DETACH_KEYS).unwrap(), vec![0x10, 0x11]);
        let e = detach_keys("ctrl-1").unwrap_err();
        assert!(
            e.to_string()
                .contains("Invalid detach keys (ctrl-1) provided"),
            "{e}"
        );
    }
}
