//! The layer wrapping the whole router: strips `/v1.NN`, refuses versions outside
//! 1.24–1.47 with Docker's message, remembers the version in the request extensions, and adds
//! moby's headers (`Api-Version`, `Server`, `Ostype`) to every reply.
//!
//! Why wrap the router and not `Router::layer` it: axum runs `Router::layer` middleware after
//! routing, when the path has been matched already. The daemon builds an outer router with
//! only a fallback (the real router) and puts this middleware on the outer one.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_api::{ApiVersion, MAX_API_VERSION};

use crate::error::ApiError;

/// The API version the request asked for (the maximum for unversioned paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestVersion(pub ApiVersion);

/// What `Server:` says (`Docker/<ver> (linux)`: the CLI parses the OS type out of it).
pub const SERVER_HEADER: &str = concat!("Docker/", env!("CARGO_PKG_VERSION"), "-berth (linux)");

pub async fn version_prefix(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let (ver, rest) = ApiVersion::split_path(&path);
    let version = match ver {
        Some(v) => match ApiVersion::check(v) {
            Ok(v) => v,
            Err(e) => return with_headers(ApiError::bad_request(e.to_string()).into_response()),
        },
        None => MAX_API_VERSION,
    };
    if ver.is_some() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        match pq.parse() {
            Ok(p) => parts.path_and_query = Some(p),
            Err(_) => {
                return with_headers(ApiError::bad_request("invalid request path").into_response())
            }
        }
        match Uri::from_parts(parts) {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => {
                return with_headers(ApiError::bad_request("invalid request path").into_response())
            }
        }
    }
    req.extensions_mut().insert(RequestVersion(version));
    tracing::debug!(method = %req.method(), path = %path, "request");
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static("1.47"));
    h.insert("server", HeaderValue::from_static(SERVER_HEADER));
    h.insert("ostype", HeaderValue::from_static("linux"));
    resp
}
