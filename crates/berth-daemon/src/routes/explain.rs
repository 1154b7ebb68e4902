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

/// A create request from `berth run` carries the client's share of the run (query
/// parameters `berth_client_start_us`, unix microseconds, and `berth_pull_us`); the
/// engine adds them to the container's start timeline. Other clients send neither.
pub fn client_times(state: &AppState, id: &str, q: &crate::query::Q) {
    let Some(start) = q
        .str("berth_client_start_us")
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return;
    };
    let Some(started) = chrono::DateTime::from_timestamp_micros(start) else {
        return;
    };
    let pull = q
        .str("berth_pull_us")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    state.engine.add_client_timeline(id, started, pull);
}
