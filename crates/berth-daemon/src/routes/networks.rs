//! `/networks...`: list, inspect, create, remove, connect, disconnect, prune, over the
//! engine's network service. With networking disabled (`-b none`), the three networks every
//! Docker host has are still listed, and changes answer 503.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::network::{
    ConfigReference, Ipam, IpamConfig, Network as WireNetwork, NetworkContainer,
};
use serde::{Deserialize, Serialize};

use super::{json, no_content, ok, parse_json};
use crate::error::{ApiError, ApiResult};
use crate::query::Q;
use crate::state::AppState;

fn wire(n: &berth_engine::Network) -> WireNetwork {
    let mut options = std::collections::BTreeMap::new();
    if let Some(b) = &n.bridge {
        options.insert("com.docker.network.bridge.name".to_string(), b.clone());
    }
    let config = match n.subnet {
        Some(s) => vec![IpamConfig {
            subnet: s.to_string(),
            gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
            ..Default::default()
        }],
        None => vec![],
    };
    let driver = match format!("{:?}", n.driver).to_lowercase().as_str() {
        "bridge" => "bridge",
        "host" => "host",
        _ => "null",
    }
    .to_string();
    WireNetwork {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        enable_ipv4: driver == "bridge",
        driver,
        ipam: Ipam {
            driver: "default".into(),
            options: Some(Default::default()),
            config: Some(config),
        },
        internal: n.internal,
        config_from: ConfigReference::default(),
        options,
        labels: n.labels.clone(),
        ..Default::default()
    }
}

/// The three networks every Docker host lists (used when networking is disabled).
fn builtin(name: &str, driver: &str) -> WireNetwork {
    let id: String = name
        .bytes()
        .cycle()
        .take(32)
        .map(|b| format!("{b:02x}"))
        .collect();
    WireNetwork {
        name: name.into(),
        id,
        created: crate::convert::ZERO_TIME.into(),
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

fn builtins() -> Vec<WireNetwork> {
    vec![
        builtin("bridge", "bridge"),
        builtin("host", "host"),
        builtin("none", "null"),
    ]
}

fn matches(f: &berth_api::filters::Filters, n: &WireNetwork) -> bool {
    let any =
        |k: &str, ok: &dyn Fn(&str) -> bool| f.get(k).is_empty() || f.get(k).iter().any(|v| ok(v));
    any("name", &|v| n.name.contains(v))
        && any("id", &|v| n.id.starts_with(v))
        && any("driver", &|v| n.driver == v)
        && any("type", &|v| {
            let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
            (v == "builtin") == builtin
        })
        && f.match_labels(&n.labels)
}

pub async fn list(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let mut nets: Vec<WireNetwork> = state
        .engine
        .network_list()
        .await?
        .iter()
        .map(wire)
        .collect();
    if nets.is_empty() {
        nets = builtins();
    }
    nets.retain(|n| matches(&f, n));
    Ok(ok(&nets))
}

pub async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    match state.engine.network_inspect(&id).await {
        Ok((n, eps)) => {
            let mut w = wire(&n);
            for e in eps {
                w.containers.insert(
                    e.container_id.clone(),
                    NetworkContainer {
                        name: e.container_name.clone(),
                        endpoint_id: e.id.clone(),
                        mac_address: e.mac.clone(),
                        ipv4_address: format!("{}/{}", e.ip, e.prefix_len),
                        ipv6_address: String::new(),
                    },
                );
            }
            Ok(ok(&w))
        }
        Err(e) if e.kind == berth_engine::ErrorKind::Unavailable => builtins()
            .into_iter()
            .find(|n| n.name == id || (id.len() >= 3 && n.id.starts_with(&id)))
            .map(|n| ok(&n))
            .ok_or_else(|| {
                ApiError::new(
                    berth_engine::ErrorKind::NotFound,
                    format!("network {id} not found"),
                )
            }),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateReply {
    id: String,
    warning: String,
}

pub async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = parse_json(&body)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request(
            "network name is required: set Name in the body",
        ));
    }
    if !matches!(b.driver.as_str(), "" | "bridge") {
        return Err(ApiError::bad_request(format!(
            "plugin \"{}\" not found: berth supports the bridge driver only",
            b.driver
        )));
    }
    if b.enable_ipv6 == Some(true) {
        return Err(ApiError::bad_request(
            "IPv6 networks are not supported by berth yet",
        ));
    }
    let mut req = berth_engine::NetworkCreate {
        name: b.name,
        internal: b.internal,
        labels: b.labels.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(c) = b
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().next())
    {
        if !c.subnet.is_empty() {
            req.subnet = Some(c.subnet.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid subnet {:?}: use an IPv4 CIDR like 10.89.0.0/24",
                    c.subnet
                ))
            })?);
        }
        if !c.gateway.is_empty() {
            req.gateway = Some(c.gateway.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid gateway {:?}: use an IPv4 address",
                    c.gateway
                ))
            })?);
        }
    }
    let n = state.engine.network_create(req).await?;
    Ok(json(
        StatusCode::CREATED,
        &CreateReply {
            id: n.id,
            warning: String::new(),
        },
    ))
}

pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    state.engine.network_remove(&id).await?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<berth_api::network::EndpointSettings>,
}

pub async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ConnectBody = parse_json(&body)?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request(
            "no container given: set Container in the body",
        ));
    }
    let aliases = b
        .endpoint_config
        .and_then(|e| e.aliases)
        .unwrap_or_default();
    state
        .engine
        .network_connect_aliases(&id, &b.container, &aliases)
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn disconnect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ConnectBody = parse_json(&body)?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request(
            "no container given: set Container in the body",
        ));
    }
    state.engine.network_disconnect(&id, &b.container).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PruneReply {
    networks_deleted: Vec<String>,
}

pub async fn prune(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let f = q.filters()?;
    let labels = f
        .get("label")
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let deleted = state.engine.network_prune(&labels).await?;
    Ok(ok(&PruneReply {
        networks_deleted: deleted,
    }))
}
