//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::system::{
    ComponentVersion, IndexInfo, PlatformName, PluginsInfo, RegistryServiceConfig, RuntimeInfo,
    SwarmInfo, SystemDf, SystemInfo, SystemVersion,
};
use tokio::sync::mpsc;

use super::ok;
use super::streams::{json_line, streaming};
use crate::convert;
use crate::error::ApiResult;
use crate::host::go_arch;
use crate::query::Q;
use crate::state::AppState;

/// The version berth reports as its engine version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn ping_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub async fn ping() -> Response {
    ping_headers(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "OK",
        )
            .into_response(),
    )
}

pub async fn ping_head() -> Response {
    ping_headers(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CONTENT_LENGTH, "0"),
            ],
        )
            .into_response(),
    )
}

pub fn version_of(state: &AppState) -> SystemVersion {
    let h = &state.inner.host;
    let mut details = BTreeMap::new();
    details.insert("ApiVersion".to_string(), "1.47".to_string());
    details.insert("MinAPIVersion".to_string(), "1.24".to_string());
    details.insert("GitCommit".to_string(), "berth".to_string());
    details.insert("GoVersion".to_string(), "rust".to_string());
    details.insert("Os".to_string(), "linux".to_string());
    details.insert("Arch".to_string(), go_arch().to_string());
    details.insert("KernelVersion".to_string(), h.kernel_version.clone());
    details.insert("Experimental".to_string(), "false".to_string());
    details.insert("BuildTime".to_string(), String::new());
    SystemVersion {
        platform: PlatformName {
            name: "berth".into(),
        },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: ENGINE_VERSION.into(),
            details: Some(details),
        }],
        version: ENGINE_VERSION.into(),
        api_version: "1.47".into(),
        min_api_version: "1.24".into(),
        git_commit: "berth".into(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch: go_arch().into(),
        kernel_version: h.kernel_version.clone(),
        experimental: false,
        build_time: String::new(),
    }
}

pub async fn version(State(state): State<AppState>) -> Response {
    ok(&version_of(&state))
}

pub async fn info(State(state): State<AppState>) -> ApiResult<Response> {
    let counts = state.engine.system_counts().await?;
    Ok(ok(&info_of(&state, &counts)))
}

pub fn info_of(state: &AppState, counts: &berth_engine::SystemCounts) -> SystemInfo {
    let h = &state.inner.host;
    let mut runtimes = BTreeMap::new();
    runtimes.insert(
        "runc".to_string(),
        RuntimeInfo {
            path: "berth runtime".into(),
            runtime_args: None,
        },
    );
    let mut index_configs = BTreeMap::new();
    index_configs.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: "docker.io".into(),
            mirrors: vec![],
            secure: true,
            official: true,
        },
    );
    for r in &state.inner.insecure_registries {
        index_configs.insert(
            r.clone(),
            IndexInfo {
                name: r.clone(),
                mirrors: vec![],
                secure: false,
                official: false,
            },
        );
    }
    let nfd = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    SystemInfo {
        id: state.inner.engine_id.clone(),
        containers: counts.containers as i64,
        containers_running: counts.running as i64,
        containers_paused: counts.paused as i64,
        containers_stopped: counts.stopped as i64,
        images: counts.images as i64,
        driver: "overlay2".into(),
        driver_status: vec![
            ["Backing Filesystem".into(), "extfs".into()],
            ["Supports d_type".into(), "true".into()],
            ["Using metacopy".into(), "false".into()],
            ["Native Overlay Diff".into(), "true".into()],
            ["userxattr".into(), "false".into()],
        ],
        docker_root_dir: state.inner.data_root.display().to_string(),
        plugins: PluginsInfo {
            volume: vec!["local".into()],
            network: vec!["bridge".into(), "host".into(), "null".into()],
            authorization: None,
            log: vec!["json-file".into()],
        },
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        oom_kill_disable: h.cgroup_version == "1",
        ipv4_forwarding: h.ipv4_forwarding,
        bridge_nf_iptables: false,
        bridge_nf_ip6tables: false,
        debug: false,
        nfd,
        n_goroutines: 0,
        system_time: convert::rfc3339(Some(chrono::Utc::now())),
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: h.cgroup_version.clone(),
        n_events_listener: 0,
        kernel_version: h.kernel_version.clone(),
        operating_system: h.operating_system.clone(),
        os_version: h.os_version.clone(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: h.ncpu,
        mem_total: h.mem_total,
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: RegistryServiceConfig {
            insecure_registry_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            index_configs,
            mirrors: vec![],
        },
        generic_resources: None,
        http_proxy: String::new(),
        https_proxy: String::new(),
        no_proxy: String::new(),
        name: h.hostname.clone(),
        labels: vec![],
        experimental_build: false,
        server_version: ENGINE_VERSION.into(),
        runtimes,
        default_runtime: "runc".into(),
        swarm: SwarmInfo {
            local_node_state: "inactive".into(),
            ..Default::default()
        },
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: "berth-init".into(),
        containerd_commit: Default::default(),
        runc_commit: Default::default(),
        init_commit: Default::default(),
        security_options: vec![
            "name=seccomp,profile=builtin".into(),
            "name=cgroupns".into(),
        ],
        product_license: String::new(),
        default_address_pools: None,
        warnings: None,
        cdi_spec_dirs: vec![],
    }
}

pub async fn df(State(state): State<AppState>) -> ApiResult<Response> {
    let du = state.engine.system_df().await?;
    let reply = SystemDf {
        layers_size: du.layers_size as i64,
        images: du.images.iter().map(convert::image::summary).collect(),
        containers: du
            .containers
            .iter()
            .map(|(c, size)| {
                let mut s = convert::container::summary(c);
                s.size_rw = Some(*size as i64);
                s
            })
            .collect(),
        volumes: du
            .volumes
            .iter()
            .map(|(v, size, refs)| convert::misc::volume_with_usage(v, *size, *refs))
            .collect(),
        build_cache: vec![],
    };
    Ok(ok(&reply))
}

/// Does `e` pass the `type`, `event`/`action`, `container`, `image`, `label` filters?
fn event_matches(f: &berth_api::filters::Filters, e: &berth_api::events::EventMessage) -> bool {
    let any = |k: &str, val: &dyn Fn(&str) -> bool| {
        f.get(k).is_empty() || f.get(k).iter().any(|x| val(x))
    };
    any("type", &|t| t == e.r#type)
        && any("event", &|a| {
            a == e.action || e.action.starts_with(&format!("{a}:"))
        })
        && any("action", &|a| a == e.action)
        && any("container", &|c| {
            e.r#type == "container"
                && (e.actor.id.starts_with(c)
                    || e.actor.attributes.get("name").is_some_and(|n| n == c))
        })
        && any("image", &|i| {
            e.actor.attributes.get("image").is_some_and(|n| n == i)
        })
        && any("volume", &|v| e.r#type == "volume" && e.actor.id == v)
        && f.match_labels(&e.actor.attributes)
}

/// `GET /events`: history since `since`, then live events until `until` (or forever).
pub async fn events(State(state): State<AppState>, q: Q) -> ApiResult<Response> {
    let filters = q.filters()?;
    let since = q.time("since")?;
    let until = q.time("until")?;
    let mut live = state.engine.subscribe_events();
    let history = since
        .map(|s| state.engine.events_since(s))
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        for e in history {
            if until.is_some_and(|u| e.time > u) {
                return;
            }
            let m = convert::misc::event(&e);
            if event_matches(&filters, &m) && tx.send(json_line(&m)).await.is_err() {
                return;
            }
        }
        if until.is_some_and(|u| u <= chrono::Utc::now()) {
            return;
        }
        loop {
            let next = match until {
                Some(u) => {
                    let left = (u - chrono::Utc::now()).to_std().unwrap_or_default();
                    match tokio::time::timeout(left, live.recv()).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                None => tokio::select! {
                    r = live.recv() => r,
                    _ = tx.closed() => return,
                },
            };
            match next {
                Ok(e) => {
                    let m = convert::misc::event(&e);
                    if event_matches(&filters, &m) && tx.send(json_line(&m)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(streaming("application/json", rx))
}
