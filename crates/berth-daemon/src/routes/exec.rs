//! `POST /containers/{id}/exec`, `POST /exec/{id}/resize`, `GET /exec/{id}/json`
//! (start is hijacked: `hijack.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::exec::{ExecCreateRequest, IdResponse};
use berth_engine::ExecSpec;

use super::{json, ok, parse_json};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::query::Q;
use crate::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: ExecCreateRequest = parse_json(&body)?;
    let cmd = req.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if super::hijack::detach_keys(&req.detach_keys).is_err() {
        return Err(ApiError::bad_request(format!(
            "Invalid escape keys ({}) provided",
            req.detach_keys
        )));
    }
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    let spec = ExecSpec {
        cmd,
        env: req.env.unwrap_or_default(),
        user: non_empty(req.user),
        working_dir: non_empty(req.working_dir),
        tty: req.tty,
        attach_stdin: req.attach_stdin,
        attach_stdout: req.attach_stdout,
        attach_stderr: req.attach_stderr,
        privileged: req.privileged,
        detach_keys: req.detach_keys,
    };
    let exec_id = state.engine.exec_create(&id, spec).await?;
    Ok(json(StatusCode::CREATED, &IdResponse { id: exec_id }))
}

pub async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    let (h, w) = super::containers::size(&q)?;
    state.engine.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let e = state.engine.exec_inspect(&id).await?;
    Ok(ok(&convert::misc::exec(&e)))
}
