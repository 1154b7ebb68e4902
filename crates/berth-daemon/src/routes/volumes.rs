//! `/volumes...`

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::volume::{VolumeCreateOptions, VolumeListResponse, VolumePruneResponse};
use berth_engine::VolumeSpec;

use super::{json, no_content, ok, parse_json};
use crate::convert;
use crate::error::ApiResult;
use crate::query::Q;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let vols = state.engine.volume_list(f.0).await?;
    Ok(ok(&VolumeListResponse {
        volumes: vols.iter().map(convert::misc::volume).collect(),
        warnings: vec![],
    }))
}

pub async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateOptions = parse_json(&body)?;
    let v = state
        .engine
        .volume_create(VolumeSpec {
            name: req.name,
            driver: req.driver,
            driver_opts: req.driver_opts,
            labels: req.labels,
        })
        .await?;
    Ok(json(StatusCode::CREATED, &convert::misc::volume(&v)))
}

pub async fn inspect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let v = state.engine.volume_inspect(&name).await?;
    Ok(ok(&convert::misc::volume(&v)))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult<Response> {
    state.engine.volume_remove(&name, q.bool("force")).await?;
    Ok(no_content())
}

pub async fn prune(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let r = state.engine.volume_prune(f.0).await?;
    Ok(ok(&VolumePruneResponse {
        volumes_deleted: r.deleted,
        space_reclaimed: r.space_reclaimed,
    }))
}
