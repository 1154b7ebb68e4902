//! Containers: create request → [`ContainerSpec`], record → inspect, summary → list item.

use std::collections::BTreeMap;

use berth_api::container::{
    ContainerConfig, ContainerCreateRequest, ContainerInspect, ContainerState as WireState,
    ContainerSummary as WireSummary, DriverData, Empty, MountPoint as WireMount, NetworkSettings,
    Port, SummaryHostConfig, SummaryNetworkSettings,
};
use berth_api::host_config::{
    HostConfig, LogConfig, Mount, PortBinding as WirePortBinding, PortMap,
    RestartPolicy as WireRestart, Ulimit as WireUlimit,
};
use berth_api::network::EndpointSettings;
use berth_engine::{
    ContainerRecord, ContainerSpec, ContainerSummary, HostSpec, MountPoint, MountSpec, PortBinding,
    RestartPolicy, Ulimit,
};

use super::rfc3339;

/// `POST /containers/create` body (+ `?name=`) → the engine's spec.
pub fn spec_from_create(req: ContainerCreateRequest, name: Option<String>) -> ContainerSpec {
    let c = req.config;
    let h = req.host_config.unwrap_or_default();
    let mut mounts = Vec::new();
    for m in h.mounts.unwrap_or_default() {
        mounts.push(mount_spec(m));
    }
    let host = HostSpec {
        memory: h.memory,
        memory_swap: h.memory_swap,
        memory_reservation: h.memory_reservation,
        nano_cpus: h.nano_cpus,
        cpu_shares: h.cpu_shares,
        cpu_period: h.cpu_period,
        cpu_quota: h.cpu_quota,
        cpuset_cpus: h.cpuset_cpus,
        cpuset_mems: h.cpuset_mems,
        pids_limit: h.pids_limit,
        ulimits: h
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        oom_kill_disable: h.oom_kill_disable.unwrap_or(false),
        shm_size: h.shm_size,
        read_only_rootfs: h.readonly_rootfs,
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        privileged: h.privileged,
        security_opt: h.security_opt.unwrap_or_default(),
        tmpfs: h.tmpfs.unwrap_or_default(),
        binds: h.binds.unwrap_or_default(),
        mounts,
        init: h.init,
        restart_policy: RestartPolicy {
            name: h.restart_policy.name,
            maximum_retry_count: h.restart_policy.maximum_retry_count,
        },
        auto_remove: h.auto_remove,
        network_mode: h.network_mode,
        port_bindings: h
            .port_bindings
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let b = v
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| PortBinding {
                        host_ip: b.host_ip,
                        host_port: b.host_port,
                    })
                    .collect();
                (k, b)
            })
            .collect(),
        publish_all_ports: h.publish_all_ports,
        dns: h.dns.unwrap_or_default(),
        dns_search: h.dns_search.unwrap_or_default(),
        dns_options: h.dns_options.unwrap_or_default(),
        extra_hosts: h.extra_hosts.unwrap_or_default(),
        sysctls: h.sysctls.unwrap_or_default(),
        log_opts: h.log_config.config,
    };
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    // `--network-alias`: the aliases asked for on the network of the mode.
    let network_aliases = req
        .networking_config
        .map(|n| {
            n.endpoints_config
                .into_values()
                .flat_map(|e| e.aliases.unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    ContainerSpec {
        name: name.filter(|n| !n.is_empty()),
        image: c.image,
        cmd: c.cmd,
        // The docker CLI sends `[""]` for `--entrypoint ""`: clear the image's entrypoint.
        entrypoint: c.entrypoint.map(|e| {
            if e.len() == 1 && e[0].is_empty() {
                Vec::new()
            } else {
                e
            }
        }),
        env: c.env.unwrap_or_default(),
        working_dir: non_empty(c.working_dir),
        user: non_empty(c.user),
        hostname: non_empty(c.hostname),
        domainname: non_empty(c.domainname),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        labels: c.labels.unwrap_or_default(),
        exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
        volumes: c.volumes.unwrap_or_default().into_keys().collect(),
        stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: c.stop_timeout,
        host,
        network_aliases,
        healthcheck: c.healthcheck.map(health_check),
        shell: c.shell.unwrap_or_default(),
    }
}

/// `Config.Healthcheck` → the engine's (durations stay nanoseconds).
fn health_check(h: berth_api::container::HealthConfig) -> berth_engine::HealthCheck {
    berth_engine::HealthCheck {
        test: h.test.unwrap_or_default(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        start_interval: h.start_interval,
        retries: h.retries,
    }
}

/// The engine's healthcheck as `Config.Healthcheck` (containers and images).
pub fn health_config(h: &berth_engine::HealthCheck) -> berth_api::container::HealthConfig {
    berth_api::container::HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
        start_interval: h.start_interval,
    }
}

/// `State.Health` as Docker shows it (swagger `Health`: Status, FailingStreak, Log of
/// `HealthcheckResult` {Start, End, ExitCode, Output}).
pub fn health_json(h: &berth_engine::Health) -> serde_json::Value {
    let log: Vec<serde_json::Value> = h
        .log
        .iter()
        .map(|r| {
            serde_json::json!({
                "Start": rfc3339(Some(r.start)),
                "End": rfc3339(Some(r.end)),
                "ExitCode": r.exit_code,
                "Output": r.output,
            })
        })
        .collect();
    serde_json::json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": log,
    })
}

fn mount_spec(m: Mount) -> MountSpec {
    let get = |v: &Option<serde_json::Value>, k: &str| v.as_ref().and_then(|o| o.get(k)).cloned();
    MountSpec {
        kind: m.r#type,
        source: m.source,
        target: m.target,
        read_only: m.read_only,
        tmpfs_size: m.tmpfs_options.as_ref().map_or(0, |t| t.size_bytes),
        tmpfs_mode: m.tmpfs_options.as_ref().map_or(0, |t| t.mode),
        propagation: get(&m.bind_options, "Propagation")
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        no_copy: get(&m.volume_options, "NoCopy")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    }
}

fn port_map(bindings: &BTreeMap<String, Vec<PortBinding>>) -> PortMap {
    bindings
        .iter()
        .map(|(k, v)| {
            let b = v
                .iter()
                .map(|b| WirePortBinding {
                    host_ip: b.host_ip.clone(),
                    host_port: b.host_port.clone(),
                })
                .collect();
            (k.clone(), Some(b))
        })
        .collect()
}

/// The spec's host part as Docker's `HostConfig`.
pub fn host_config(h: &HostSpec) -> HostConfig {
    let opt_vec = |v: &Vec<String>| if v.is_empty() { None } else { Some(v.clone()) };
    HostConfig {
        cpu_shares: h.cpu_shares,
        memory: h.memory,
        cpu_period: h.cpu_period,
        cpu_quota: h.cpu_quota,
        cpuset_cpus: h.cpuset_cpus.clone(),
        cpuset_mems: h.cpuset_mems.clone(),
        memory_reservation: h.memory_reservation,
        memory_swap: h.memory_swap,
        nano_cpus: h.nano_cpus,
        oom_kill_disable: Some(h.oom_kill_disable),
        init: h.init,
        pids_limit: h.pids_limit,
        ulimits: Some(
            h.ulimits
                .iter()
                .map(|u| WireUlimit {
                    name: u.name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
        ),
        binds: opt_vec(&h.binds),
        log_config: LogConfig {
            r#type: "json-file".into(),
            config: h.log_opts.clone(),
        },
        network_mode: if h.network_mode.is_empty() {
            "bridge".into()
        } else {
            h.network_mode.clone()
        },
        port_bindings: Some(port_map(&h.port_bindings)),
        restart_policy: WireRestart {
            name: if h.restart_policy.name.is_empty() {
                "no".into()
            } else {
                h.restart_policy.name.clone()
            },
            maximum_retry_count: h.restart_policy.maximum_retry_count,
        },
        auto_remove: h.auto_remove,
        cap_add: opt_vec(&h.cap_add),
        cap_drop: opt_vec(&h.cap_drop),
        cgroupns_mode: "private".into(),
        dns: Some(h.dns.clone()),
        dns_options: Some(h.dns_options.clone()),
        dns_search: Some(h.dns_search.clone()),
        extra_hosts: opt_vec(&h.extra_hosts),
        ipc_mode: "private".into(),
        privileged: h.privileged,
        publish_all_ports: h.publish_all_ports,
        readonly_rootfs: h.read_only_rootfs,
        security_opt: opt_vec(&h.security_opt),
        tmpfs: if h.tmpfs.is_empty() {
            None
        } else {
            Some(h.tmpfs.clone())
        },
        shm_size: if h.shm_size == 0 {
            64 * 1024 * 1024
        } else {
            h.shm_size
        },
        sysctls: if h.sysctls.is_empty() {
            None
        } else {
            Some(h.sysctls.clone())
        },
        runtime: "runc".into(),
        mounts: if h.mounts.is_empty() {
            None
        } else {
            Some(
                h.mounts
                    .iter()
                    .map(|m| Mount {
                        target: m.target.clone(),
                        source: m.source.clone(),
                        r#type: m.kind.clone(),
                        read_only: m.read_only,
                        ..Default::default()
                    })
                    .collect(),
            )
        },
        masked_paths: Some(Vec::new()),
        readonly_paths: Some(Vec::new()),
        ..Default::default()
    }
}

/// The resolved spec as Docker's `Config`.
pub fn container_config(s: &ContainerSpec, id: &str) -> ContainerConfig {
    let set = |v: &Vec<String>| -> Option<BTreeMap<String, Empty>> {
        if v.is_empty() {
            None
        } else {
            Some(v.iter().map(|p| (p.clone(), Empty {})).collect())
        }
    };
    ContainerConfig {
        hostname: s
            .hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect()),
        domainname: s.domainname.clone().unwrap_or_default(),
        user: s.user.clone().unwrap_or_default(),
        attach_stdin: s.attach_stdin,
        attach_stdout: s.attach_stdout,
        attach_stderr: s.attach_stderr,
        exposed_ports: set(&s.exposed_ports),
        tty: s.tty,
        open_stdin: s.open_stdin,
        stdin_once: s.stdin_once,
        env: Some(s.env.clone()),
        cmd: s.cmd.clone(),
        image: s.image.clone(),
        volumes: set(&s.volumes),
        working_dir: s.working_dir.clone().unwrap_or_default(),
        entrypoint: s.entrypoint.clone(),
        on_build: None,
        labels: Some(s.labels.clone()),
        stop_signal: s.stop_signal.clone(),
        stop_timeout: s.stop_timeout,
        healthcheck: s.healthcheck.as_ref().map(health_config),
        // omitempty, as moby's `Shell strslice.StrSlice`.
        shell: (!s.shell.is_empty()).then(|| s.shell.clone()),
        ..Default::default()
    }
}

pub fn mount_point(m: &MountPoint) -> WireMount {
    WireMount {
        r#type: m.kind.clone(),
        name: m.name.clone(),
        source: m.source.clone(),
        destination: m.destination.clone(),
        driver: m.driver.clone(),
        mode: m.mode.clone(),
        rw: m.rw,
        propagation: m.propagation.clone(),
    }
}

/// The record as `GET /containers/{id}/json`.
pub fn inspect(r: &ContainerRecord) -> ContainerInspect {
    let st = &r.state;
    let network_mode = if r.config.host.network_mode.is_empty() {
        "bridge"
    } else {
        &r.config.host.network_mode
    };
    let mut networks = BTreeMap::new();
    for (name, ep) in &r.networks {
        networks.insert(
            name.clone(),
            EndpointSettings {
                network_id: ep.network_id.clone(),
                endpoint_id: ep.endpoint_id.clone(),
                gateway: ep.gateway.clone(),
                ip_address: ep.ip_address.clone(),
                ip_prefix_len: i64::from(ep.ip_prefix_len),
                mac_address: ep.mac_address.clone(),
                aliases: (!ep.aliases.is_empty()).then(|| ep.aliases.clone()),
                // Names the embedded DNS answers for it (user networks only, as Docker).
                dns_names: (name != "bridge" && !ep.ip_address.is_empty()).then(|| {
                    let mut n = vec![r.bare_name().to_string()];
                    n.extend(ep.aliases.iter().cloned());
                    n.push(r.short_id().to_string());
                    n
                }),
                ..Default::default()
            },
        );
    }
    if networks.is_empty()
        && network_mode != "none"
        && network_mode != "host"
        && !network_mode.starts_with("container:")
    {
        networks.insert(network_mode.to_string(), EndpointSettings::default());
    }
    // Ports: the bindings as made while running (random host ports resolved), else as asked.
    let mut ports = port_map(&r.config.host.port_bindings);
    let bound: Vec<_> = r.networks.values().flat_map(|ep| ep.ports.iter()).collect();
    if st.running && !bound.is_empty() {
        ports.clear();
        for p in bound {
            let b = WirePortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.to_string(),
            };
            ports
                .entry(p.container_port.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
    }
    for exposed in &r.config.exposed_ports {
        ports.entry(exposed.clone()).or_insert(None);
    }
    // Docker's legacy top-level fields mirror the default bridge network.
    let legacy = r.networks.get("bridge").cloned().unwrap_or_default();
    ContainerInspect {
        id: r.id.clone(),
        created: rfc3339(Some(r.created)),
        path: r.path.clone(),
        args: r.args.clone(),
        state: WireState {
            status: st.status.as_str().to_string(),
            running: st.running,
            paused: st.paused,
            restarting: st.restarting,
            oom_killed: st.oom_killed,
            dead: st.dead,
            pid: i64::from(st.pid),
            exit_code: i64::from(st.exit_code),
            error: st.error.clone(),
            started_at: rfc3339(st.started_at),
            finished_at: rfc3339(st.finished_at),
            health: st.health.as_ref().map(health_json),
        },
        image: r.image_id.clone(),
        resolv_conf_path: r.resolv_conf_path.clone(),
        hostname_path: r.hostname_path.clone(),
        hosts_path: r.hosts_path.clone(),
        log_path: r.log_path.clone(),
        name: r.name.clone(),
        restart_count: r.restart_count as i64,
        driver: "overlay2".into(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: if r.exec_ids.is_empty() {
            None
        } else {
            Some(r.exec_ids.clone())
        },
        host_config: host_config(&r.config.host),
        graph_driver: DriverData {
            name: "overlay2".into(),
            data: r.graph_driver.clone(),
        },
        size_rw: None,
        size_root_fs: None,
        mounts: r.mounts.iter().map(mount_point).collect(),
        config: container_config(&r.config, &r.id),
        network_settings: NetworkSettings {
            ports,
            endpoint_id: legacy.endpoint_id.clone(),
            gateway: legacy.gateway.clone(),
            ip_address: legacy.ip_address.clone(),
            ip_prefix_len: i64::from(legacy.ip_prefix_len),
            mac_address: legacy.mac_address.clone(),
            bridge: String::new(),
            sandbox_key: if st.pid > 0 {
                format!("/proc/{}/ns/net", st.pid)
            } else {
                String::new()
            },
            networks,
            ..Default::default()
        },
    }
}

/// Publish list: `80/tcp` → bindings, flattened to Docker's `Ports` items.
fn ports(list: &[(String, Vec<PortBinding>)]) -> Vec<Port> {
    let mut out = Vec::new();
    for (key, bindings) in list {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(private) = port.parse::<u16>() else {
            continue;
        };
        if bindings.is_empty() {
            out.push(Port {
                private_port: private,
                r#type: proto.into(),
                ..Default::default()
            });
        }
        for b in bindings {
            out.push(Port {
                ip: if b.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    b.host_ip.clone()
                },
                private_port: private,
                public_port: b.host_port.parse().ok(),
                r#type: proto.into(),
            });
        }
    }
    out
}

/// A list row as `GET /containers/json` shows it.
pub fn summary(s: &ContainerSummary) -> WireSummary {
    let network_mode = if s.network_mode.is_empty() {
        "bridge".to_string()
    } else {
        s.network_mode.clone()
    };
    let mut networks = BTreeMap::new();
    if network_mode != "none" && network_mode != "host" {
        networks.insert(network_mode.clone(), EndpointSettings::default());
    }
    WireSummary {
        id: s.id.clone(),
        names: s.names.clone(),
        image: s.image.clone(),
        image_id: s.image_id.clone(),
        command: s.command.clone(),
        created: s.created.timestamp(),
        // Bindings exist only while the container runs (Docker clears them at stop).
        ports: if matches!(s.state.as_str(), "running" | "paused" | "restarting") {
            ports(&s.ports)
        } else {
            Vec::new()
        },
        size_rw: None,
        size_root_fs: None,
        labels: s.labels.clone(),
        state: s.state.as_str().to_string(),
        status: s.status.clone(),
        host_config: SummaryHostConfig {
            network_mode,
            annotations: None,
        },
        network_settings: SummaryNetworkSettings { networks },
        mounts: s.mounts.iter().map(mount_point).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_maps_config_and_host() {
        let req: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":["sh"],"Env":["A=1"],"Tty":true,"OpenStdin":true,
                "ExposedPorts":{"80/tcp":{}},"Labels":{"x":"y"},
                "HostConfig":{"Memory":33554432,"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
                "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"AutoRemove":true,"CapAdd":["NET_ADMIN"],
                "Mounts":[{"Type":"volume","Source":"data","Target":"/data","VolumeOptions":{"NoCopy":true}}]}}"#,
        )
        .unwrap();
        let s = spec_from_create(req, Some("web".into()));
        assert_eq!(s.name.as_deref(), Some("web"));
        assert_eq!(s.host.memory, 33554432);
        assert_eq!(s.host.port_bindings["80/tcp"][0].host_port, "8080");
        assert_eq!(s.host.restart_policy.maximum_retry_count, 2);
        assert!(s.host.auto_remove && s.tty && s.open_stdin);
        assert_eq!(s.exposed_ports, vec!["80/tcp"]);
        assert!(s.host.mounts[0].no_copy);
        assert_eq!(s.working_dir, None);
        let clear: ContainerCreateRequest =
            serde_json::from_str(r#"{"Image":"x","Entrypoint":[""]}"#).unwrap();
        assert_eq!(spec_from_create(clear, None).entrypoint, Some(vec![]));
    }

    #[test]
    fn shell_round_trips_and_is_omitted_when_empty() {
        let req: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"x","Shell":["/bin/ash","-c"],"Healthcheck":{"Test":["CMD-SHELL","true"]}}"#,
        )
        .unwrap();
        let s = spec_from_create(req, None);
        assert_eq!(s.shell, vec!["/bin/ash", "-c"]);
        let v = serde_json::to_value(container_config(&s, "abc")).unwrap();
        assert_eq!(v["Shell"], serde_json::json!(["/bin/ash", "-c"]));
        // A string is one element (strslice), null or absent is none.
        let req: ContainerCreateRequest =
            serde_json::from_str(r#"{"Image":"x","Shell":null}"#).unwrap();
        let s = spec_from_create(req, None);
        assert!(s.shell.is_empty());
        let v = serde_json::to_value(container_config(&s, "abc")).unwrap();
        assert!(v.get("Shell").is_none(), "{v}");
    }
}
