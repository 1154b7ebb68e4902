//! `GET /berth/containers/{id}/explain`: berth's own endpoint (not in Docker's API), the
//! engine's [`berth_engine::explain::Explanation`] as JSON. Unknown container → 404;
//! a stopped one → 200 with `running: false` and a `note` saying what is not shown.

use axum::extract::{Path, State};
use axum::response::Response;

use super::ok;
use crate::error::ApiResult;
use crate::state::AppState;

pub async fn explain(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let ex = state.engine.explain_container(&id).await?;
    Ok(ok(&ex))
}
