//! `/containers/...` (everything but the hijacked attach, see `hijack.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::container::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerPruneResponse, ContainerTopResponse,
    ContainerWaitResponse, WaitExitError,
};
use berth_api::stream::{encode_frame, StreamType, MULTIPLEXED_CONTENT_TYPE, RAW_CONTENT_TYPE};
use berth_engine::{ListOptions, LogOptions, LogStreamKind, RemoveOptions, WaitCondition};
use tokio::sync::mpsc;

use super::streams::{json_line, streaming};
use super::{json, no_content, ok, parse_json};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::prefix::RequestVersion;
use crate::query::Q;
use crate::state::AppState;

/// Docker's container name rule.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub async fn create(State(state): State<AppState>, q: Q, body: Bytes) -> ApiResult<Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let req: ContainerCreateRequest = parse_json(&body)?;
    let name = q.str("name").filter(|n| !n.is_empty()).map(str::to_string);
    if let Some(n) = &name {
        if !valid_name(n) {
            return Err(ApiError::bad_request(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    if req.config.image.is_empty() {
        return Err(ApiError::bad_request(
            "no image specified: set Image in the create body",
        ));
    }
    let spec = convert::container::spec_from_create(req, name);
    let r = state.engine.create_container(spec).await?;
    super::explain::client_times(&state, &r.id, &q);
    Ok(json(
        StatusCode::CREATED,
        &ContainerCreateResponse {
            id: r.id,
            warnings: r.warnings,
        },
    ))
}

pub async fn list(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let filters = q.filters()?;
    let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
    let opts = ListOptions {
        all: q.bool("all"),
        limit,
        filters: filters.0,
    };
    let list = state.engine.list_containers(opts).await?;
    let out: Vec<_> = list.iter().map(convert::container::summary).collect();
    Ok(ok(&out))
}

pub async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let r = state.engine.inspect_container(&id).await?;
    Ok(ok(&convert::container::inspect(&r)))
}

pub async fn start(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // A `--rm` container whose start failed is removed by the engine (moby's behaviour),
    // which is what `docker run --rm`'s `wait?condition=removed` waits for.
    state.engine.start_container(&id).await?;
    Ok(no_content())
}

fn timeout(q: &Q) -> ApiResult<Option<i64>> {
    match q.int("t")? {
        Some(t) => Ok(Some(t)),
        None => q.int("timeout"),
    }
}

pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let signal = q
        .str("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    state
        .engine
        .stop_container(&id, timeout(&q)?, signal)
        .await?;
    Ok(no_content())
}

pub async fn kill(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let signal = q
        .str("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    state.engine.kill_container(&id, signal).await?;
    Ok(no_content())
}

pub async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    state.engine.restart_container(&id, timeout(&q)?).await?;
    Ok(no_content())
}

/// Registers the waiter, answers the headers at once, writes the body at the exit
/// (`docker run` blocks on the headers before it starts the container).
pub async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let cond = WaitCondition::parse(q.str("condition").unwrap_or(""))?;
    let handle = state.engine.wait_container(&id, cond).await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let r = handle.result().await;
        let reply = ContainerWaitResponse {
            status_code: r.status_code,
            error: r.error.map(|message| WaitExitError { message }),
        };
        let _ = tx.send(json_line(&reply)).await;
    });
    Ok(streaming("application/json", rx))
}

pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let name = q.str("name").unwrap_or("");
    if !valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    state.engine.rename_container(&id, name).await?;
    Ok(no_content())
}

pub async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    state.engine.pause_container(&id).await?;
    Ok(no_content())
}

pub async fn unpause(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    state.engine.unpause_container(&id).await?;
    Ok(no_content())
}

/// `h` and `w` as a terminal size.
pub fn size(q: &Q) -> ApiResult<(u16, u16)> {
    let h = q.int("h")?.unwrap_or(0);
    let w = q.int("w")?.unwrap_or(0);
    let ok = |v: i64| {
        u16::try_from(v).map_err(|_| ApiError::bad_request(format!("invalid terminal size {v}")))
    };
    Ok((ok(h)?, ok(w)?))
}

pub async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let (h, w) = size(&q)?;
    state.engine.resize_container(&id, h, w).await?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::OK))
}

pub async fn top(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let t = state.engine.top_container(&id, q.str("ps_args")).await?;
    Ok(ok(&ContainerTopResponse {
        titles: t.titles,
        processes: t.processes,
    }))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    if q.bool("link") {
        return Err(ApiError::bad_request(
            "legacy links are not supported by berth",
        ));
    }
    state
        .engine
        .remove_container(
            &id,
            RemoveOptions {
                force: q.bool("force"),
                volumes: q.bool("v"),
            },
        )
        .await?;
    Ok(no_content())
}

pub async fn prune(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let filters = q.filters()?;
    let r = state.engine.prune_containers(filters.0).await?;
    Ok(ok(&ContainerPruneResponse {
        containers_deleted: r.deleted,
        space_reclaimed: r.space_reclaimed,
    }))
}

/// Content type of a stdio stream for this container and API version.
pub fn stream_content_type(tty: bool, version: RequestVersion) -> &'static str {
    if tty || version.0 < berth_api::ApiVersion::new(1, 42) {
        RAW_CONTENT_TYPE
    } else {
        MULTIPLEXED_CONTENT_TYPE
    }
}

pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(version): axum::Extension<RequestVersion>,
    q: Q,
) -> ApiResult<Response> {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let rec = state.engine.inspect_container(&id).await?;
    let tty = rec.config.tty;
    let tail = match q.str("tail").map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
    };
    let opts = LogOptions {
        follow: q.bool("follow"),
        tail,
        since: q.time("since")?,
        until: q.time("until")?,
        stdout,
        stderr,
    };
    let timestamps = q.bool("timestamps");
    let mut entries = state.engine.container_logs(&rec.id, opts).await?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(item) = entries.recv().await {
            let chunk = match item {
                Ok(e) => {
                    let mut payload = Vec::with_capacity(e.bytes.len() + 32);
                    if timestamps {
                        payload.extend_from_slice(
                            e.time
                                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                                .as_bytes(),
                        );
                        payload.push(b' ');
                    }
                    payload.extend_from_slice(&e.bytes);
                    if tty {
                        payload
                    } else {
                        let st = match e.stream {
                            LogStreamKind::Stdout => StreamType::Stdout,
                            LogStreamKind::Stderr => StreamType::Stderr,
                        };
                        encode_frame(st, &payload)
                    }
                }
                Err(e) => {
                    if tty {
                        break;
                    }
                    encode_frame(
                        StreamType::SystemErr,
                        format!("error from daemon in stream: {e}").as_bytes(),
                    )
                }
            };
            if tx.send(Bytes::from(chunk)).await.is_err() {
                break;
            }
        }
    });
    Ok(streaming(stream_content_type(tty, version), rx))
}

pub async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let stream = q.bool_or("stream", true) && !q.bool("one-shot");
    if !stream {
        let s = state.engine.container_stats(&id).await?;
        return Ok(ok(&convert::misc::stats(&s)));
    }
    let mut samples = state.engine.container_stats_stream(&id).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                s = samples.recv() => match s {
                    Some(s) => {
                        if tx.send(json_line(&convert::misc::stats(&s))).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(streaming("application/json", rx))
}
