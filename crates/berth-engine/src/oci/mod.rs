//! Container config → OCI runtime spec (`config.json` in the bundle).
//!
//! The spec is assembled as JSON and checked by deserializing into `oci_spec`'s types, so
//! what the runtime reads is schema-valid. Pieces: [`caps`] (Docker's default set,
//! add/drop), [`seccomp`] (Docker's profile resolved for the container), [`mounts`]
//! (defaults, masked paths, binds, volumes, tmpfs), [`user`] (`--user` via the image's
//! passwd), [`resources`] (limits, rlimits), [`etc_files`] (hosts, resolv.conf).

pub mod caps;
pub mod etc_files;
pub mod mounts;
pub mod resources;
pub mod seccomp;
pub mod user;

use crate::spec::ContainerSpec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The PATH Docker sets when the image has none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` is mounted inside the container.
pub const INIT_PATH: &str = "/sbin/berth-init";

/// Host facts the spec depends on (read once per engine).
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub seccomp: seccomp::Host,
    /// The engine's own capability bounding set.
    pub bounding: Vec<String>,
    /// `/proc/self/limits` text.
    pub limits: String,
    pub ncpu: u32,
}

impl HostFacts {
    pub fn current() -> HostFacts {
        HostFacts {
            seccomp: seccomp::Host::current(),
            bounding: caps::own_bounding_set(),
            limits: std::fs::read_to_string("/proc/self/limits").unwrap_or_default(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
        }
    }
}

/// Files bind-mounted over the image's `/etc` entries.
#[derive(Debug, Clone)]
pub struct EtcPaths {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything the spec is built from.
pub struct SpecInput<'a> {
    /// The resolved container config (image defaults applied, env merged).
    pub config: &'a ContainerSpec,
    /// argv: entrypoint + cmd.
    pub args: &'a [String],
    /// The merged rootfs (for `--user` lookup and `root.path`).
    pub rootfs: &'a Path,
    pub hostname: &'a str,
    pub etc: Option<&'a EtcPaths>,
    /// User mounts with their resolved host source.
    pub mounts: &'a [(mounts::UserMount, String)],
    pub cgroups_path: &'a str,
    /// The init binary for `--init`.
    pub init_binary: Option<&'a Path>,
    /// `/proc/<pid>/ns/net` to join (`--network container:x`), or `None`.
    pub join_netns: Option<&'a str>,
    pub host: &'a HostFacts,
}

/// A built spec plus warnings for the caller.
#[derive(Debug)]
pub struct BuiltSpec {
    pub spec: oci_spec::runtime::Spec,
    pub warnings: Vec<String>,
}

/// Parsed `--security-opt` values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecurityOpts {
    pub seccomp_unconfined: bool,
    /// A custom profile (JSON text).
    pub seccomp_profile: Option<String>,
    pub no_new_privileges: bool,
}

/// Parse `--security-opt` entries (`key=value` or the old `key:value`).
pub fn parse_security_opts(opts: &[String]) -> Result<(SecurityOpts, Vec<String>), String> {
    let mut out = SecurityOpts::default();
    let mut warnings = Vec::new();
    for o in opts {
        if o == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let (k, v) = o
            .split_once('=')
            .or_else(|| o.split_once(':'))
            .ok_or_else(|| format!("Invalid --security-opt: {o:?}"))?;
        match k {
            "seccomp" => {
                if v == "unconfined" {
                    out.seccomp_unconfined = true;
                } else if v == "builtin" || v.is_empty() {
                } else if v.trim_start().starts_with('{') {
                    seccomp::parse_profile(v)?;
                    out.seccomp_profile = Some(v.to_string());
                } else {
                    // A path (the docker CLI sends the file content; other clients may not).
                    let text = std::fs::read_to_string(v)
                        .map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
                    seccomp::parse_profile(&text)?;
                    out.seccomp_profile = Some(text);
                }
            }
            "no-new-privileges" => {
                out.no_new_privileges = v
                    .parse::<bool>()
                    .map_err(|_| format!("invalid --security-opt 2: {o:?}"))?;
            }
            "apparmor" | "label" => warnings.push(format!(
                "security option {o:?} ignored: no {k} support on this host"
            )),
            _ => return Err(format!("invalid --security-opt 2: {o:?}")),
        }
    }
    Ok((out, warnings))
}

/// Merge `KEY=VALUE` lists: later entries replace earlier ones with the same key, in place.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let key = e.split('=').next().unwrap_or(e);
        match out.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// The process environment: PATH (default), HOSTNAME, TERM for a TTY, then the config's
/// env (which wins), HOME from passwd when unset.
pub fn process_env(config_env: &[String], hostname: &str, tty: bool, home: &str) -> Vec<String> {
    let mut base = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    let mut env = merge_env(&base, config_env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Build the OCI spec.
pub fn build(input: &SpecInput<'_>) -> Result<BuiltSpec, String> {
    let cfg = input.config;
    let host = &cfg.host;
    let mut warnings = Vec::new();

    let (secopts, w) = parse_security_opts(&host.security_opt)?;
    warnings.extend(w);

    let caps = caps::resolve(&host.cap_add, &host.cap_drop, host.privileged)?;
    let (caps, w) = caps::clamp(caps, &input.host.bounding, host.privileged);
    warnings.extend(w);

    let user = user::resolve(cfg.user.as_deref().unwrap_or(""), input.rootfs)?;
    let env = process_env(&cfg.env, input.hostname, cfg.tty, &user.home);

    let mut args: Vec<String> = input.args.to_vec();
    if args.is_empty() {
        return Err("no command specified".to_string());
    }
    let init = host.init.unwrap_or(false);
    if init {
        let mut a = vec![INIT_PATH.to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }

    let (rlimits, w) = resources::rlimits(host, &input.host.limits);
    warnings.extend(w);

    let mut process = json!({
        "terminal": cfg.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": cfg.working_dir.as_deref().filter(|w| !w.is_empty()).unwrap_or("/"),
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": secopts.no_new_privileges,
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }

    // Mounts: defaults, minus any a user mount replaces; then /etc files; then user mounts.
    let user_dests: Vec<&str> = input
        .mounts
        .iter()
        .map(|(m, _)| m.destination.as_str())
        .collect();
    let mut mounts: Vec<Value> = mounts::default_mounts(host.privileged, host.shm_size)
        .into_iter()
        .filter(|m| !user_dests.contains(&m["destination"].as_str().unwrap_or("")))
        .collect();
    if let Some(etc) = input.etc {
        for (dest, src) in [
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
            ("/etc/hosts", &etc.hosts),
        ] {
            if user_dests.contains(&dest) {
                continue;
            }
            mounts.push(json!({
                "destination": dest, "type": "bind", "source": src,
                "options": ["rbind", "rprivate"],
            }));
        }
    }
    for (um, src) in input.mounts {
        mounts.push(mounts::to_oci(um, src));
    }
    if init {
        let bin = input
            .init_binary
            .ok_or_else(|| "--init requested but no init binary is configured".to_string())?;
        mounts.push(json!({
            "destination": INIT_PATH, "type": "bind", "source": bin,
            "options": ["bind", "ro", "rprivate"],
        }));
    }

    let host_net = host.network_mode == "host";
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "mount"}),
    ];
    if !host_net {
        namespaces.push(json!({"type": "uts"}));
    }
    match input.join_netns {
        Some(path) => namespaces.push(json!({"type": "network", "path": path})),
        None if !host_net => namespaces.push(json!({"type": "network"})),
        None => {}
    }
    namespaces.push(json!({"type": "cgroup"}));

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources::linux_resources(host, resources::default_device_rules(host.privileged)),
    });
    if !host.privileged {
        linux["maskedPaths"] = json!(mounts::MASKED_PATHS);
        linux["readonlyPaths"] = json!(mounts::READONLY_PATHS);
    }
    if !host.sysctls.is_empty() {
        linux["sysctl"] = json!(host.sysctls);
    }
    if !host.privileged && !secopts.seccomp_unconfined {
        let custom;
        let profile = match &secopts.seccomp_profile {
            Some(text) => {
                custom = seccomp::parse_profile(text)?;
                &custom
            }
            None => seccomp::default_profile(),
        };
        linux["seccomp"] = seccomp::to_oci(profile, &caps, &input.host.seccomp);
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs, "readonly": host.read_only_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !host_net {
        spec["hostname"] = json!(input.hostname);
        if let Some(d) = cfg.domainname.as_deref().filter(|d| !d.is_empty()) {
            spec["domainname"] = json!(d);
        }
    }
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(spec).map_err(|e| format!("building the OCI spec failed: {e}"))?;
    Ok(BuiltSpec { spec, warnings })
}

#[cfg(test)]
mod tests;
