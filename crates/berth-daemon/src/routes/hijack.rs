//! The hijacked endpoints: `POST /containers/{id}/attach` and `POST /exec/{id}/start`.
//!
//! The client sends `Connection: Upgrade` + `Upgrade: tcp`; the daemon answers `101` and
//! from then on the connection is a raw duplex: client bytes go to the process's stdin,
//! the process's output comes back (multiplexed frames without a TTY, raw with one).
//! When the client half-closes (`shutdown(SHUT_WR)` after its stdin hit EOF), the process's
//! stdin is closed and output keeps flowing until the process is done; only then does the
//! daemon close the connection. Old clients without `Upgrade` get `200` and the output as
//! the body.

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
    let stream = state.engine.attach_container(&id, opts).await?;
    Ok(hijack(req, stream, version))
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
    let console_size = start.console_size.as_deref().and_then(|s| match s {
        [h, w] => Some((u16::try_from(*h).ok()?, u16::try_from(*w).ok()?)),
        _ => None,
    });
    let opts = ExecStartOptions {
        detach: start.detach,
        console_size,
    };
    let stream = state.engine.exec_start(&id, opts).await?;
    match stream {
        None => Ok(StatusCode::OK.into_response()),
        Some(s) => Ok(hijack(
            Request::from_parts(parts, Body::empty()),
            s,
            version,
        )),
    }
}

/// Answers 101 and pumps bytes both ways once hyper hands over the connection.
fn hijack(req: Request, stream: AttachStream, version: RequestVersion) -> Response {
    let content_type = stream_content_type(stream.tty, version);
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    if !wants_upgrade {
        return raw_output(stream, content_type);
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => pump(TokioIo::new(upgraded), stream).await,
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
/// until the process's output ends (then the connection is closed).
async fn pump<C>(client: C, stream: AttachStream)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ir, mut iw) = tokio::io::split(stream.io);
    let to_process = async {
        let _ = tokio::io::copy(&mut cr, &mut iw).await;
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
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = from_process => {}
        _ = to_process => {}
    }
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
