//! `/images/...`: pull (create), list, inspect, tag, remove, import.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::image::ImageDeleteResponseItem;
use berth_api::progress::{ProgressDetail, ProgressMessage};
use berth_engine::{ImageDeleteItem, PullProgress};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::ok;
use super::streams::streaming;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::query::Q;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let list = state.engine.image_list(q.bool("all"), f.0).await?;
    Ok(ok(&list
        .iter()
        .map(convert::image::summary)
        .collect::<Vec<_>>()))
}

/// `fromImage` + `tag` → one reference (`repo:tag` or `repo@sha256:…`).
pub fn reference(from: &str, tag: &str) -> String {
    if tag.is_empty() {
        return from.to_string();
    }
    if tag.contains(':') {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    }
}

fn progress_message(p: &PullProgress) -> ProgressMessage {
    // Docker's final line reads `Status: Downloaded newer image for …` / `Status: Image is
    // up to date for …`; clients and scripts match on that prefix.
    let status = if p.id.is_none()
        && (p.status.starts_with("Downloaded newer image")
            || p.status.starts_with("Image is up to date"))
    {
        format!("Status: {}", p.status)
    } else {
        p.status.clone()
    };
    ProgressMessage {
        status: Some(status),
        id: p.id.clone(),
        progress_detail: if p.current.is_some() || p.total.is_some() {
            Some(ProgressDetail {
                current: p.current.map(|c| c as i64),
                total: p.total.map(|t| t as i64),
            })
        } else {
            None
        },
        ..Default::default()
    }
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub async fn create(State(state): State<AppState>, q: Q, req: Request) -> ApiResult<Response> {
    if let Some(src) = q.str("fromSrc") {
        // `changes` repeats (`changes=CMD+sh&changes=ENV+A=1`): every value, in order.
        let changes: Vec<String> = q
            .all("changes")
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        return import(state, &q, src.to_string(), changes, req.into_body()).await;
    }
    let from = q.str("fromImage").unwrap_or("").to_string();
    if from.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    let reference = reference(&from, q.str("tag").unwrap_or(""));
    let platform = q
        .str("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let auth = super::auth::x_registry_auth(req.headers());
    let (ptx, prx) = mpsc::unbounded_channel::<PullProgress>();
    let pull = spawn_pull(state.engine.clone(), reference, platform, auth, ptx);
    progress_reply(prx, pull).await
}

/// The reply of a pull or push: errors before the first progress message are plain HTTP
/// errors (bad reference, 404); after it, they are reported in-band as `errorDetail`.
async fn progress_reply<T: Send + 'static>(
    mut prx: mpsc::UnboundedReceiver<PullProgress>,
    mut done: tokio::sync::oneshot::Receiver<berth_engine::Result<T>>,
) -> ApiResult<Response> {
    let mut early: Option<berth_engine::Result<T>> = None;
    // The task drops its progress sender when it ends, so a closed channel means "look at
    // the result": an error then is still a plain HTTP error, not an in-band one.
    let first = tokio::select! {
        p = prx.recv() => p.ok_or(None),
        r = &mut done => Err(Some(r)),
    };
    let first = match first {
        Ok(p) => Some(p),
        Err(r) => {
            let r = match r {
                Some(r) => r,
                None => (&mut done).await,
            };
            match r {
                Ok(Err(e)) => return Err(e.into()),
                Ok(ok) => {
                    early = Some(ok);
                    None
                }
                Err(_) => {
                    return Err(ApiError::new(
                        berth_engine::ErrorKind::Internal,
                        "the image task ended without a result",
                    ))
                }
            }
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        if let Some(p) = first {
            let _ = tx.send(Bytes::from(progress_message(&p).to_line())).await;
        }
        while let Some(p) = prx.recv().await {
            let _ = tx.send(Bytes::from(progress_message(&p).to_line())).await;
        }
        let result = match early {
            Some(r) => Ok(r),
            None => done.await,
        };
        let end = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.message),
            Err(_) => Some("the image task ended without a result".to_string()),
        };
        if let Some(msg) = end {
            let _ = tx
                .send(Bytes::from(ProgressMessage::error(msg).to_line()))
                .await;
        }
    });
    Ok(streaming("application/json", rx))
}

/// Runs the engine's pull on its own thread with a small runtime.
///
/// Why: berth-image's pull future is not provably `Send` for all lifetimes (rustc's "FnOnce
/// is not general enough" on a closure inside it), so neither `tokio::spawn` nor an axum
/// handler can hold it. A dedicated thread needs only the inputs to be `Send`.
fn spawn_pull(
    engine: berth_engine::Engine,
    reference: String,
    platform: Option<String>,
    auth: Option<berth_engine::images::RegistryAuth>,
    progress: mpsc::UnboundedSender<PullProgress>,
) -> tokio::sync::oneshot::Receiver<berth_engine::Result<berth_engine::ImageSummary>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("berth-pull".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(berth_engine::EngineError::internal(format!(
                        "cannot start a pull runtime: {e}"
                    ))));
                    return;
                }
            };
            let r = rt.block_on(engine.image_pull_auth(
                &reference,
                platform.as_deref(),
                auth,
                Some(progress),
            ));
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot spawn a pull thread: {e}");
    }
    rx
}

/// Spools a request body (a tarball) into a temporary file under the data root.
async fn body_to_tempfile(state: &AppState, body: Body) -> ApiResult<tempfile::NamedTempFile> {
    let internal = |what: &str, e: std::io::Error| {
        ApiError::new(berth_engine::ErrorKind::Internal, format!("{what}: {e}"))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&state.inner.data_root)
        .map_err(|e| internal("cannot create a temporary file", e))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(|e| internal("reopen", e))?);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the tarball: {e}")))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| internal("writing the tarball", e))?;
    }
    file.flush()
        .await
        .map_err(|e| internal("writing the tarball", e))?;
    Ok(tmp)
}

async fn import(
    state: AppState,
    q: &Q,
    src: String,
    changes: Vec<String>,
    body: Body,
) -> ApiResult<Response> {
    let repo = q.str("repo").unwrap_or("");
    let opts = berth_engine::import::ImportOptions {
        reference: (!repo.is_empty()).then(|| reference(repo, q.str("tag").unwrap_or(""))),
        changes,
        message: q.str("message").map(str::to_string),
    };
    if src != "-" {
        // A URL: fetched by the daemon, `Importing` progress, then the id (as dockerd).
        let (ptx, prx) = mpsc::unbounded_channel::<PullProgress>();
        let (dtx, drx) = tokio::sync::oneshot::channel();
        let engine = state.engine.clone();
        tokio::spawn(async move {
            let r = engine.image_import_url(&src, &opts, ptx).await;
            let _ = dtx.send(r);
        });
        return progress_reply(prx, drx).await;
    }
    let tmp = body_to_tempfile(&state, body).await?;
    let path = tmp.path().to_path_buf();
    let img = state.engine.image_import_with(&path, &opts, "-").await?;
    drop(tmp);
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(ProgressMessage::status(img.id).to_line()));
    Ok(streaming("application/json", rx))
}

/// `GET /images/{name}/json|history|get`.
pub async fn get_dispatch(
    State(state): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let d = state.engine.image_inspect(name).await?;
        return Ok(ok(&convert::image::inspect(&d)));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let rows = state.engine.image_history(name).await?;
        let items: Vec<berth_api::image::ImageHistoryItem> = rows
            .into_iter()
            .map(|h| berth_api::image::ImageHistoryItem {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                tags: h.tags,
                size: i64::try_from(h.size).unwrap_or(i64::MAX),
                comment: h.comment,
            })
            .collect();
        return Ok(ok(&items));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(&state, vec![name.to_string()]).await;
    }
    Err(ApiError::page_not_found())
}

/// `POST /images/{name}/tag|push`.
pub async fn post_dispatch(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    q: Q,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = q.str("repo").unwrap_or("");
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let tag = q.str("tag").filter(|t| !t.is_empty());
        state.engine.image_tag(name, repo, tag).await?;
        return Ok(axum::response::IntoResponse::into_response(
            StatusCode::CREATED,
        ));
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let reference = reference(name, q.str("tag").unwrap_or(""));
        let (ptx, prx) = mpsc::unbounded_channel::<PullProgress>();
        let (dtx, drx) = tokio::sync::oneshot::channel();
        let engine = state.engine.clone();
        let auth = super::auth::x_registry_auth(&headers);
        tokio::spawn(async move {
            let _ = dtx.send(engine.image_push_auth(&reference, auth, Some(ptx)).await);
        });
        return progress_reply(prx, drx).await;
    }
    Err(ApiError::page_not_found())
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let items = state
        .engine
        .image_remove(&name, q.bool("force"), !q.bool("noprune"))
        .await?;
    let out: Vec<ImageDeleteResponseItem> = items
        .into_iter()
        .map(|i| match i {
            ImageDeleteItem::Untagged(s) => ImageDeleteResponseItem {
                untagged: Some(s),
                deleted: None,
            },
            ImageDeleteItem::Deleted(s) => ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(s),
            },
        })
        .collect();
    Ok(ok(&out))
}

/// `POST /images/load`: the body is a docker-archive or OCI layout tarball.
pub async fn load(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let tmp = body_to_tempfile(&state, req.into_body()).await?;
    let loaded = state.engine.image_load(tmp.path()).await?;
    drop(tmp);
    let (tx, rx) = mpsc::channel(loaded.len().max(1));
    // `docker load -q` still prints the `Loaded image` lines (quiet hides progress only).
    for img in &loaded {
        let line = match img.repo_tags.first() {
            Some(t) => format!("Loaded image: {t}\n"),
            None => format!("Loaded image ID: {}\n", img.id),
        };
        let m = ProgressMessage {
            stream: Some(line),
            ..Default::default()
        };
        let _ = tx.try_send(Bytes::from(m.to_line()));
    }
    Ok(streaming("application/json", rx))
}

/// `GET /images/get?names=a&names=b`: one archive of several images.
pub async fn get_many(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let names: Vec<String> = q.all("names").into_iter().map(str::to_string).collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given: use names=IMAGE"));
    }
    save(&state, names).await
}

/// Writes the archive to a temporary file, then streams it.
async fn save(state: &AppState, names: Vec<String>) -> ApiResult<Response> {
    let tmp = tempfile::Builder::new()
        .prefix(".save-")
        .tempfile_in(&state.inner.data_root)
        .map_err(|e| {
            ApiError::new(
                berth_engine::ErrorKind::Internal,
                format!("cannot create a temporary file: {e}"),
            )
        })?;
    state.engine.image_save(&names, tmp.path()).await?;
    let file = tokio::fs::File::open(tmp.path()).await.map_err(|e| {
        ApiError::new(
            berth_engine::ErrorKind::Internal,
            format!("reading the archive: {e}"),
        )
    })?;
    // The open handle keeps the data readable after the path is unlinked.
    drop(tmp);
    let body = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), f))
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::new(berth_engine::ErrorKind::Internal, e.to_string()))
}

/// `POST /images/prune`: dangling images, or every unused one with `dangling=false`.
pub async fn prune(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let all = f
        .get("dangling")
        .iter()
        .any(|v| matches!(v.as_str(), "false" | "0"));
    let (items, space) = state.engine.image_prune(all).await?;
    let deleted = items.into_iter().map(delete_item).collect();
    Ok(ok(&berth_api::image::ImagePruneResponse {
        images_deleted: deleted,
        space_reclaimed: space,
    }))
}

fn delete_item(i: ImageDeleteItem) -> ImageDeleteResponseItem {
    match i {
        ImageDeleteItem::Untagged(s) => ImageDeleteResponseItem {
            untagged: Some(s),
            deleted: None,
        },
        ImageDeleteItem::Deleted(s) => ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(s),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn references() {
        assert_eq!(
            super::reference("127.0.0.1:5000/busybox", "latest"),
            "127.0.0.1:5000/busybox:latest"
        );
        assert_eq!(
            super::reference("busybox", "sha256:abc"),
            "busybox@sha256:abc"
        );
        assert_eq!(super::reference("busybox:1", ""), "busybox:1");
    }
}
