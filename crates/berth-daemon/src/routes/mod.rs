//! The route table: Docker Engine API paths → handlers.

pub mod archive;
pub mod auth;
pub mod containers;
pub mod exec;
pub mod explain;
pub mod hijack;
pub mod images;
pub mod networks;
pub mod streams;
pub mod system;
pub mod volumes;

use axum::routing::{delete, get, head, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// All routes, unversioned (the prefix layer strips `/v1.NN`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/events", get(system::events))
        .route("/auth", post(auth::login))
        // containers
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/attach", post(hijack::attach))
        .route("/containers/{id}/exec", post(exec::create))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/export", get(archive::export))
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/containers/{id}", delete(containers::remove))
        // berth's own
        .route("/berth/containers/{id}/explain", get(explain::explain))
        // exec
        .route("/exec/{id}/start", post(hijack::exec_start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        // images (names contain slashes: `/images/127.0.0.1:5000/busybox/json`)
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::get_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        // volumes
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        // networks
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/distribution/{*rest}", head(not_found).get(not_found))
        .route("/plugins/{*rest}", get(plugin_not_found))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::page_not_found()
}

async fn plugin_not_found(axum::extract::Path(rest): axum::extract::Path<String>) -> ApiError {
    let name = rest.trim_end_matches("/json");
    ApiError::new(
        berth_engine::ErrorKind::NotFound,
        format!("plugin \"{name}\" not found"),
    )
}

/// Parses a JSON body; malformed JSON is a 400 with serde's reason.
pub fn parse_json<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A JSON reply with a status.
pub fn json<T: serde::Serialize>(
    status: axum::http::StatusCode,
    v: &T,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// 200 + JSON.
pub fn ok<T: serde::Serialize>(v: &T) -> axum::response::Response {
    json(axum::http::StatusCode::OK, v)
}

/// 204 No Content.
pub fn no_content() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::http::StatusCode::NO_CONTENT.into_response()
}
