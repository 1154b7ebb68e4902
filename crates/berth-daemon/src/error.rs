//! The daemon's error reply, and the ONE place where engine error kinds become HTTP status
//! codes (containerd's errdefs → moby's `httpstatus.FromError`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::ErrorResponse;
use berth_engine::{EngineError, ErrorKind};

/// An error answered as `{"message":"…"}` with a status code the docker CLI branches on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// Engine error kind → HTTP status. Every error the daemon answers goes through here.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status: status_for(kind),
            message: message.into(),
        }
    }

    /// 400 with a message (malformed JSON, bad query values).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// 404 for a path the daemon does not serve (moby: `page not found`).
    pub fn page_not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: "page not found".into(),
        }
    }

    /// 501 for an endpoint berth does not implement (yet).
    pub fn not_implemented(what: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            message: format!("{what} is not supported by berth yet"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::new(e.kind, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            return self.status.into_response();
        }
        let body = serde_json::to_vec(&ErrorResponse::new(self.message)).unwrap_or_default();
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_codes() {
        assert_eq!(status_for(ErrorKind::NotFound), 404);
        assert_eq!(status_for(ErrorKind::Conflict), 409);
        assert_eq!(status_for(ErrorKind::InvalidArgument), 400);
        assert_eq!(status_for(ErrorKind::NotModified), 304);
        assert_eq!(status_for(ErrorKind::Unavailable), 503);
        assert_eq!(status_for(ErrorKind::Unauthorized), 401);
        assert_eq!(status_for(ErrorKind::Internal), 500);
        let e: ApiError = EngineError::no_such_container("foo").into();
        assert_eq!(e.status, 404);
        assert_eq!(e.message, "No such container: foo");
    }
}
