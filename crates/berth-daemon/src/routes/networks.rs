//! `GET /networks`, `GET /networks/{id}`: the three networks every Docker host has.
//! (User-defined networks need the engine's network service, which does not exist yet.)

use axum::extract::Path;
use axum::response::Response;
use berth_api::network::{Ipam, Network};

use super::ok;
use crate::error::{ApiError, ApiResult};

/// Stable ids for the built-in networks (sha256-shaped, derived from the name).
fn builtin(name: &str, driver: &str) -> Network {
    let id: String = name
        .bytes()
        .cycle()
        .take(32)
        .map(|b| format!("{:02x}", b))
        .collect();
    Network {
        name: name.into(),
        id,
        created: super::super::convert::ZERO_TIME.into(),
        scope: "local".into(),
        driver: driver.into(),
        enable_ipv4: driver == "bridge",
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config: Some(vec![]),
        },
        ..Default::default()
    }
}

fn builtins() -> Vec<Network> {
    vec![
        builtin("bridge", "bridge"),
        builtin("host", "host"),
        builtin("none", "null"),
    ]
}

pub async fn list() -> Response {
    ok(&builtins())
}

pub async fn inspect(Path(id): Path<String>) -> ApiResult<Response> {
    builtins()
        .into_iter()
        .find(|n| n.name == id || (id.len() >= 3 && n.id.starts_with(&id)))
        .map(|n| ok(&n))
        .ok_or_else(|| {
            ApiError::new(
                berth_engine::ErrorKind::NotFound,
                format!("network {id} not found"),
            )
        })
}
