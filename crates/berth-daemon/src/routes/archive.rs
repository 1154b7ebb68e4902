//! `/containers/{id}/archive` (HEAD stat, GET tar, PUT extract), `/containers/{id}/export`,
//! `/containers/{id}/changes`: `docker cp`, `docker export`, `docker diff`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::archive::{self, ArchiveReceiver, PathStat, PutOptions};
use berth_engine::ErrorKind;
use futures_util::StreamExt;

use super::ok;
use crate::error::{ApiError, ApiResult};
use crate::query::Q;
use crate::spool::{Spool, SpoolError};
use crate::state::AppState;

/// The header the docker CLI reads a path's stat from.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_of(q: &Q) -> ApiResult<String> {
    match q.str("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

/// base64(JSON) of the stat, as moby's `setContainerPathStatHeader` writes it.
pub fn stat_header(st: &PathStat) -> HeaderValue {
    let json = serde_json::to_vec(st).unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&b64).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A body streamed from the engine's tar channel; an error mid-stream ends the body with it.
fn tar_body(rx: ArchiveReceiver) -> Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r.map(Bytes::from), rx))
    });
    Body::from_stream(s)
}

pub async fn head(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let st = state.engine.archive_stat(&id, &path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st));
    Ok(r)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let (st, rx) = state.engine.archive_get(&id, &path).await?;
    let mut r = Response::new(tar_body(rx));
    r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
    req: Request,
) -> ApiResult<Response> {
    let body = req.into_body();
    // Errors that need no body come at once (a missing path, no such container), after the
    // rest of a small body is read and dropped, as Go's net/http does for dockerd: a client
    // still writing would otherwise get a broken pipe instead of the answer (`docker cp - x:/`).
    let early = match path_of(&q) {
        Ok(path) => state
            .engine
            .inspect_container(&id)
            .await
            .map(|rec| (path, rec.id))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let (path, full_id) = match early {
        Ok(v) => v,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let opts = PutOptions {
        no_overwrite_dir_non_dir: q.bool("noOverwriteDirNonDir"),
        copy_uid_gid: q.bool("copyUIDGID"),
    };
    // The whole body before the extraction: the engine extracts under the container's
    // lifecycle lock, and a client stalling mid-upload must not hold `stop`/`rm` (see
    // [`crate::spool`]).
    let spool = Spool::read(body, &state.inner.data_root)
        .await
        .map_err(|e| match e {
            SpoolError::Body(_) => ApiError::bad_request(e.to_string()),
            SpoolError::File { .. } => ApiError::new(ErrorKind::Internal, e.to_string()),
        })?;
    let (tx, rx) = archive::archive_channel();
    let feed = tokio::spawn(spool.feed(tx));
    let res = state.engine.archive_put(&full_id, &path, opts, rx).await;
    // The feed ends by itself once the extraction drops its receiver.
    let _ = feed.await;
    res?;
    Ok(StatusCode::OK.into_response())
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of a refused upload's body, for at most
/// [`DRAIN_TIME`] (Go's net/http drains 256 KiB).
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut drained = 0usize;
        while let Some(Ok(b)) = stream.next().await {
            drained += b.len();
            if drained > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// How much of a refused upload's body is read and dropped before the error goes out, and
/// for how long at most.
const DRAIN_LIMIT: usize = 1 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn export(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = state.engine.export_container(&id).await?;
    let mut r = Response::new(tar_body(rx));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeJson {
    path: String,
    kind: u8,
}

pub async fn changes(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let list = state.engine.container_changes(&id).await?;
    let out: Vec<ChangeJson> = list
        .into_iter()
        .map(|c| ChangeJson {
            path: c.path,
            kind: c.kind as u8,
        })
        .collect();
    Ok(ok(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_header_is_base64_json_in_docker_field_names() {
        let st = PathStat {
            name: "hostname".into(),
            size: 13,
            mode: 0o644,
            mtime: "2024-01-02T03:04:05.123456789Z".into(),
            link_target: String::new(),
        };
        let h = stat_header(&st);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.to_str().unwrap())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "hostname");
        assert_eq!(v["size"], 13);
        assert_eq!(v["mode"], 0o644);
        assert_eq!(v["linkTarget"], "");
        assert_eq!(v["mtime"], "2024-01-02T03:04:05.123456789Z");
    }
}
