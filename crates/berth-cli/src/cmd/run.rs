//! `run`, `create`, `start -a`: the docker CLI's sequence (create → pull on 404 → create;
//! attach before start; wait registered before start; start; exit with the container's code).

use std::collections::BTreeMap;

use berth_api::container::{
    ContainerConfig, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect,
    ContainerWaitResponse, Empty, NetworkingConfig,
};
use berth_api::host_config::{
    HostConfig, LogConfig, Mount, PortBinding, RestartPolicy, TmpfsOptions, Ulimit,
};
use berth_api::network::EndpointSettings;
use berth_client::{Client, ClientError, Query};

use super::attach;
use crate::app::RunArgs;
use crate::units::parse_ram;
use crate::{CmdResult, Failure};

fn usage(msg: impl Into<String>) -> Failure {
    Failure::new(
        125,
        format!("berth: {}\nSee 'berth run --help'.", msg.into()),
    )
}

/// `-e` and `--env-file` entries; `NAME` alone takes the local value (dropped when unset).
pub fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| usage(format!("open {f}: {e}")))?;
        for l in text.lines() {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            push_env(&mut out, l);
        }
    }
    for e in env {
        push_env(&mut out, e);
    }
    Ok(out)
}

fn push_env(out: &mut Vec<String>, e: &str) {
    if e.contains('=') {
        out.push(e.to_string());
    } else if let Ok(v) = std::env::var(e) {
        out.push(format!("{e}={v}"));
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (`80/tcp`, binding).
pub fn parse_publish(p: &str) -> Result<(String, PortBinding), Failure> {
    let (spec, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (ctr, host_port, host_ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, *ip),
        _ => return Err(usage(format!("invalid publish spec {p:?}"))),
    };
    if ctr.parse::<u16>().is_err() {
        return Err(usage(format!("invalid containerPort: {ctr}")));
    }
    if !host_port.is_empty() && host_port.parse::<u16>().is_err() {
        return Err(usage(format!("invalid hostPort: {host_port}")));
    }
    let ip = host_ip.trim_start_matches('[').trim_end_matches(']');
    Ok((
        format!("{ctr}/{proto}"),
        PortBinding {
            host_ip: ip.to_string(),
            host_port: host_port.to_string(),
        },
    ))
}

fn parse_mount(s: &str) -> Result<Mount, Failure> {
    let mut m = Mount {
        r#type: "volume".into(),
        ..Default::default()
    };
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        match k {
            "type" => m.r#type = v.into(),
            "source" | "src" => m.source = v.into(),
            "target" | "destination" | "dst" => m.target = v.into(),
            "readonly" | "ro" => m.read_only = v != "false" && v != "0",
            "tmpfs-size" => {
                let size = parse_ram(v).map_err(usage)?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .size_bytes = size;
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(v, 8)
                    .map_err(|_| usage(format!("invalid tmpfs-mode {v}")))?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .mode = mode;
            }
            "volume-nocopy" => m.volume_options = Some(serde_json::json!({"NoCopy": v != "false"})),
            "bind-propagation" => m.bind_options = Some(serde_json::json!({"Propagation": v})),
            other => return Err(usage(format!("unexpected key '{other}' in '{s}'"))),
        }
    }
    if m.target.is_empty() {
        return Err(usage("target is required in --mount"));
    }
    Ok(m)
}

/// The create body from `run`/`create` flags.
pub fn create_request(a: &RunArgs) -> Result<ContainerCreateRequest, Failure> {
    let image = a.args.first().cloned().unwrap_or_default();
    let cmd = if a.args.len() > 1 {
        Some(a.args[1..].to_vec())
    } else {
        None
    };
    let attach_set = |s: &str| a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let (att_in, att_out, att_err) = if a.detach {
        (false, false, false)
    } else if a.attach.is_empty() {
        (a.interactive, true, true)
    } else {
        (
            attach_set("stdin"),
            attach_set("stdout"),
            attach_set("stderr"),
        )
    };
    let mut exposed: BTreeMap<String, Empty> = BTreeMap::new();
    let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in &a.publish {
        let (k, b) = parse_publish(p)?;
        exposed.insert(k.clone(), Empty {});
        bindings
            .entry(k)
            .or_insert_with(|| Some(vec![]))
            .get_or_insert_with(Vec::new)
            .push(b);
    }
    for e in &a.expose {
        let k = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(k, Empty {});
    }
    let mut binds = Vec::new();
    let mut volumes: BTreeMap<String, Empty> = BTreeMap::new();
    for v in &a.volume {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), Empty {});
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| usage(format!("invalid ulimit argument: {u}")))?;
        let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
        let p = |x: &str| {
            x.parse::<i64>()
                .map_err(|_| usage(format!("invalid ulimit argument: {u}")))
        };
        ulimits.push(Ulimit {
            name: name.into(),
            soft: p(soft)?,
            hard: p(hard)?,
        });
    }
    let mut tmpfs = BTreeMap::new();
    for t in &a.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), opts.to_string());
    }
    let restart = match a.restart.as_deref() {
        None | Some("") => RestartPolicy::default(),
        Some(r) => {
            let (name, count) = r.split_once(':').unwrap_or((r, ""));
            let max = if count.is_empty() {
                0
            } else {
                count
                    .parse()
                    .map_err(|_| usage(format!("invalid restart policy {r}")))?
            };
            RestartPolicy {
                name: name.into(),
                maximum_retry_count: max,
            }
        }
    };
    if a.rm && !restart.name.is_empty() && restart.name != "no" {
        return Err(usage(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    let kv = |list: &[String]| -> BTreeMap<String, String> {
        list.iter()
            .map(|s| {
                let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let memory = a
        .memory
        .as_deref()
        .map(parse_ram)
        .transpose()
        .map_err(usage)?
        .unwrap_or(0);
    let memory_swap = match a.memory_swap.as_deref() {
        None => 0,
        Some("-1") => -1,
        Some(s) => parse_ram(s).map_err(usage)?,
    };
    let mut mounts = Vec::new();
    for m in &a.mount {
        mounts.push(parse_mount(m)?);
    }
    let entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![]
        } else {
            vec![e.clone()]
        }
    });
    let config = ContainerConfig {
        hostname: a.hostname.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        attach_stdin: att_in,
        attach_stdout: att_out,
        attach_stderr: att_err,
        exposed_ports: if exposed.is_empty() {
            None
        } else {
            Some(exposed)
        },
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: a.interactive && !a.detach,
        env: Some(env_list(&a.env, &a.env_file)?),
        cmd,
        image,
        volumes: if volumes.is_empty() {
            None
        } else {
            Some(volumes)
        },
        working_dir: a.workdir.clone().unwrap_or_default(),
        entrypoint,
        labels: Some(labels),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: super::health::health_config(a)?,
        ..Default::default()
    };
    let host = HostConfig {
        memory,
        memory_swap,
        memory_reservation: a
            .memory_reservation
            .as_deref()
            .map(parse_ram)
            .transpose()
            .map_err(usage)?
            .unwrap_or(0),
        nano_cpus: a.cpus.map_or(0, |c| (c * 1e9) as i64),
        cpu_shares: a.cpu_shares.unwrap_or(0),
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: a.pids_limit,
        ulimits: Some(ulimits),
        readonly_rootfs: a.read_only,
        cap_add: Some(a.cap_add.clone()),
        cap_drop: Some(a.cap_drop.clone()),
        privileged: a.privileged,
        security_opt: Some(a.security_opt.clone()),
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        init: if a.init { Some(true) } else { None },
        restart_policy: restart,
        auto_remove: a.rm,
        network_mode: a.network.clone().unwrap_or_default(),
        port_bindings: Some(bindings),
        publish_all_ports: a.publish_all,
        binds: Some(binds),
        mounts: if mounts.is_empty() {
            None
        } else {
            Some(mounts)
        },
        dns: Some(a.dns.clone()),
        extra_hosts: Some(a.add_host.clone()),
        shm_size: a
            .shm_size
            .as_deref()
            .map(parse_ram)
            .transpose()
            .map_err(usage)?
            .unwrap_or(0),
        sysctls: if a.sysctl.is_empty() {
            None
        } else {
            Some(kv(&a.sysctl))
        },
        log_config: LogConfig {
            r#type: String::new(),
            config: kv(&a.log_opt),
        },
        console_size: if a.tty {
            crate::tty::size().map(|(h, w)| vec![u32::from(h), u32::from(w)])
        } else {
            None
        },
        ..Default::default()
    };
    Ok(ContainerCreateRequest {
        config,
        host_config: Some(host),
        // `--network-alias`: on the network of the mode, as the docker CLI sends it.
        networking_config: (!a.network_alias.is_empty()).then(|| NetworkingConfig {
            endpoints_config: [(
                a.network.clone().unwrap_or_else(|| "default".into()),
                EndpointSettings {
                    aliases: Some(a.network_alias.clone()),
                    ..Default::default()
                },
            )]
            .into(),
        }),
    })
}

/// `busybox` → `busybox:latest` (for messages).
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container; pulls and retries once on "No such image".
async fn create_container(
    c: &Client,
    a: &RunArgs,
    req: &ContainerCreateRequest,
) -> Result<String, Failure> {
    let mut pulled = std::time::Duration::ZERO;
    // The client's share of the run, for the start timeline (`berth explain`).
    let path = |pulled: std::time::Duration| {
        let q = Query::new().opt("name", a.name.clone());
        let q = super::explain::client_times(q, pulled);
        format!("/containers/create{}", q.encode())
    };
    let image = req.config.image.clone();
    if a.pull == "always" {
        let t = std::time::Instant::now();
        super::images::pull_image(c, &image, a.quiet, true)
            .await
            .map_err(|f| Failure::new(125, f.message))?;
        pulled += t.elapsed();
    }
    let first: Result<ContainerCreateResponse, ClientError> =
        c.post_json(&path(pulled), Some(req)).await;
    let r = match first {
        Err(e)
            if e.is_not_found()
                && e.message().starts_with("No such image")
                && a.pull != "never" =>
        {
            eprintln!("Unable to find image '{}' locally", with_tag(&image));
            let t = std::time::Instant::now();
            super::images::pull_image(c, &image, a.quiet, true)
                .await
                .map_err(|f| Failure::new(125, f.message))?;
            pulled += t.elapsed();
            c.post_json(&path(pulled), Some(req)).await
        }
        other => other,
    };
    let r = r.map_err(|e| {
        Failure::new(
            125,
            format!("berth: {e}\n\nRun 'berth run --help' for more information"),
        )
    })?;
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(r.id)
}

pub async fn create(c: &Client, a: RunArgs) -> CmdResult {
    let req = create_request(&a)?;
    let id = create_container(c, &a, &req).await?;
    println!("{id}");
    Ok(0)
}

/// Docker's exit code for a failed start: 127 not found, 126 cannot execute, 125 otherwise.
pub fn start_error_code(msg: &str) -> i32 {
    let m = msg.to_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

pub async fn run(c: &Client, a: RunArgs) -> CmdResult {
    super::explain::validate(a.explain.as_deref())?;
    let req = create_request(&a)?;
    let id = create_container(c, &a, &req).await?;
    if a.detach {
        if let Err(e) = c.post_status(&format!("/containers/{id}/start")).await {
            return Err(Failure::new(
                start_error_code(&e.message()),
                format!("berth: {e}"),
            ));
        }
        println!("{id}");
        if let Some(f) = &a.explain {
            super::explain::after_run(c, &id, f, false).await?;
        }
        return Ok(0);
    }
    let cfg = &req.config;
    attach::check_tty(cfg.attach_stdin, cfg.tty)?;
    let attach_any = cfg.attach_stdin || cfg.attach_stdout || cfg.attach_stderr;
    let condition = if a.rm { "removed" } else { "next-exit" };
    let session = Session {
        tty: cfg.tty,
        stdin: cfg.attach_stdin,
        attach: attach_any,
        condition,
        sig_proxy: a.sig_proxy && !cfg.tty,
        explain: a.explain.as_deref(),
        detach_keys: a.detach_keys.as_deref(),
    };
    attached_session(c, &id, session).await
}

/// How `run`/`start -a` attach to a container.
struct Session<'a> {
    tty: bool,
    /// Forward local stdin.
    stdin: bool,
    /// Attach at all (any of stdin/stdout/stderr).
    attach: bool,
    /// The wait condition (`next-exit`, `removed`).
    condition: &'a str,
    /// Forward SIGINT/SIGTERM as kills.
    sig_proxy: bool,
    explain: Option<&'a str>,
    /// `--detach-keys` (the default sequence when `None`).
    detach_keys: Option<&'a str>,
}

/// attach → wait → start → (resize, raw mode, signal proxy) → pump → exit code.
async fn attached_session(c: &Client, id: &str, session: Session<'_>) -> CmdResult {
    let Session {
        tty,
        stdin,
        attach,
        condition,
        sig_proxy,
        explain,
        detach_keys,
    } = session;
    let detach_keys = crate::detach::effective(detach_keys);
    let detach_keys = detach_keys.as_deref();
    let io = if attach {
        let q = Query::new()
            .add("stream", 1)
            .flag("stdin", stdin)
            .add("stdout", 1)
            .add("stderr", 1)
            .opt("detachKeys", detach_keys)
            .encode();
        Some(
            c.hijack(&format!("/containers/{id}/attach{q}"), None)
                .await
                .map_err(|e| Failure::new(125, e.to_string()))?,
        )
    } else {
        None
    };
    let mut wait = c
        .post_stream(
            &format!("/containers/{id}/wait?condition={condition}"),
            Client::empty_body(),
            None,
            &[],
        )
        .await
        .map_err(|e| Failure::new(125, e.to_string()))?;
    if let Err(e) = c.post_status(&format!("/containers/{id}/start")).await {
        return Err(Failure::new(
            start_error_code(&e.message()),
            format!("berth: {e}"),
        ));
    }
    if let Some(f) = explain {
        // On stderr: stdout is the program's.
        super::explain::after_run(c, id, f, true).await?;
    }
    let _raw = if tty && stdin && crate::tty::stdin_is_tty() {
        crate::tty::RawMode::enable()
    } else {
        None
    };
    if tty {
        attach::forward_resize(c, format!("/containers/{id}/resize"));
    }
    if sig_proxy {
        attach::proxy_signals(c, id.to_string());
    }
    if let Some(io) = io {
        let keys = (tty && stdin).then(|| crate::detach::keys_or_default(detach_keys));
        if attach::pump(io, tty, stdin, keys).await? == attach::SessionEnd::Detached {
            // docker: the user detached; the container keeps running, nothing is printed.
            return Ok(0);
        }
    }
    let status = wait
        .next_json::<ContainerWaitResponse>()
        .await
        .map_err(|e| Failure::new(125, e.to_string()))?
        .ok_or_else(|| {
            Failure::new(
                125,
                "the daemon closed the wait stream without an exit status",
            )
        })?;
    if let Some(err) = status.error {
        if !err.message.is_empty() {
            return Err(Failure::new(125, format!("berth: {}", err.message)));
        }
    }
    Ok(status.status_code as i32)
}

/// `start -a [-i]`.
pub async fn start_attached(
    c: &Client,
    name: &str,
    interactive: bool,
    detach_keys: Option<&str>,
) -> CmdResult {
    let i: ContainerInspect = c.get_json(&format!("/containers/{name}/json")).await?;
    let stdin = interactive && i.config.open_stdin;
    attach::check_tty(stdin, i.config.tty)?;
    let session = Session {
        tty: i.config.tty,
        stdin,
        attach: true,
        condition: "next-exit",
        sig_proxy: !i.config.tty,
        explain: None,
        detach_keys,
    };
    attached_session(c, &i.id, session).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn req(args: &[&str]) -> ContainerCreateRequest {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        match crate::app::Cli::try_parse_from(v).unwrap().command {
            crate::app::Command::Run(r) => create_request(&r).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_become_the_create_body() {
        let r = req(&[
            "-d",
            "--name",
            "web",
            "-p",
            "127.0.0.1:8080:80",
            "-m",
            "32m",
            "--cpus",
            "1.5",
            "-e",
            "A=1",
            "-v",
            "data:/data",
            "-v",
            "/anon",
            "--ulimit",
            "nofile=100:200",
            "--restart",
            "on-failure:3",
            "--tmpfs",
            "/run:size=1m",
            "-l",
            "a=b",
            "img",
            "httpd",
            "-f",
        ]);
        let h = r.host_config.unwrap();
        assert_eq!(h.memory, 32 << 20);
        assert_eq!(h.nano_cpus, 1_500_000_000);
        assert_eq!(
            h.port_bindings.unwrap()["80/tcp"].as_ref().unwrap()[0].host_ip,
            "127.0.0.1"
        );
        assert_eq!(h.binds.unwrap(), vec!["data:/data"]);
        assert_eq!(h.ulimits.unwrap()[0].hard, 200);
        assert_eq!(h.restart_policy.maximum_retry_count, 3);
        assert_eq!(
            r.config.volumes.unwrap().keys().collect::<Vec<_>>(),
            vec!["/anon"]
        );
        assert_eq!(r.config.cmd.unwrap(), vec!["httpd", "-f"]);
        assert!(!r.config.attach_stdout);
        let r = req(&["-i", "--rm", "img", "cat"]);
        assert!(
            r.config.attach_stdin
                && r.config.open_stdin
                && r.config.stdin_once
                && r.config.attach_stdout
        );
        assert!(r.host_config.unwrap().auto_remove);
    }

    #[test]
    fn publish_specs_and_exit_codes() {
        assert_eq!(parse_publish("8080:80").unwrap().1.host_port, "8080");
        assert_eq!(parse_publish("80/udp").unwrap().0, "80/udp");
        assert!(parse_publish("x:80").is_err());
        assert_eq!(
            start_error_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("permission denied"), 126);
        assert_eq!(start_error_code("boom"), 125);
        assert_eq!(
            with_tag("127.0.0.1:5000/busybox"),
            "127.0.0.1:5000/busybox:latest"
        );
    }
}
