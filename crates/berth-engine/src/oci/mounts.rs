//! Mounts: Docker's default filesystem set, masked and read-only paths, and the user's
//! `-v` / `--mount` / `--tmpfs` entries.

use crate::spec::{HostSpec, MountSpec};
use serde_json::{json, Value};

/// Paths hidden from the container (moby `oci/defaults.go`). Several do not exist on this
/// host's kernel; the runtime skips missing ones.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn m(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Value {
    json!({ "destination": dest, "type": typ, "source": src, "options": opts })
}

/// Docker's default mounts. `/dev/shm` gets `shm_size` bytes (64 MiB when 0).
pub fn default_mounts(privileged: bool, shm_size: i64) -> Vec<Value> {
    let shm = if shm_size > 0 { shm_size } else { 64 << 20 };
    let sys_ro = if privileged { "rw" } else { "ro" };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        json!({
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]
        }),
    ]
}

/// A user mount after parsing, before volumes are resolved to host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMount {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path (bind), volume name (volume; empty = anonymous), `tmpfs`.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// Bind propagation (`rprivate` unless given).
    pub propagation: String,
    /// tmpfs options (`size=..`, `mode=..`).
    pub tmpfs_options: Vec<String>,
    /// Fill a new volume from the image's content at `destination`.
    pub copy_image_data: bool,
    /// The `-v` mode string for inspect (`ro`, `rw`, `z`...).
    pub mode: String,
}

fn check_destination(dest: &str) -> Result<(), String> {
    if !dest.starts_with('/') {
        return Err(format!(
            "invalid mount config: invalid mount path: '{dest}' mount path must be absolute"
        ));
    }
    if dest.trim_end_matches('/').is_empty() {
        return Err("invalid mount config: destination can't be '/'".to_string());
    }
    if dest.split('/').any(|c| c == "..") {
        return Err(format!(
            "invalid mount config: mount path '{dest}' must not contain '..'"
        ));
    }
    Ok(())
}

/// Parse one `-v` string.
pub fn parse_bind(spec: &str) -> Result<UserMount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(format!("invalid volume specification: '{spec}'")),
    };
    check_destination(dest).map_err(|e| format!("invalid volume specification: '{spec}': {e}"))?;
    let mut read_only = false;
    let mut propagation = String::new();
    let mut copy = true;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" => {}
            "nocopy" => copy = false,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                propagation = opt.to_string()
            }
            other => return Err(format!("invalid mode: {other}")),
        }
    }
    let kind = if source.is_empty() || !source.starts_with('/') {
        if !source.is_empty() {
            check_volume_name(source)?;
        }
        "volume"
    } else {
        "bind"
    };
    if kind == "volume" && !propagation.is_empty() {
        return Err(format!(
            "invalid volume specification: '{spec}': propagation applies to binds only"
        ));
    }
    Ok(UserMount {
        kind: kind.to_string(),
        source: source.to_string(),
        destination: dest.trim_end_matches('/').to_string(),
        read_only,
        propagation: if kind == "bind" && propagation.is_empty() {
            "rprivate".to_string()
        } else {
            propagation
        },
        tmpfs_options: vec![],
        copy_image_data: kind == "volume" && copy,
        mode: mode.to_string(),
    })
}

/// Docker's volume-name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut c = name.chars();
    let ok = matches!(c.next(), Some(f) if f.is_ascii_alphanumeric())
        && name.len() >= 2
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ))
    }
}

fn from_mount_spec(ms: &MountSpec) -> Result<UserMount, String> {
    check_destination(&ms.target)?;
    let mut um = UserMount {
        kind: ms.kind.clone(),
        source: ms.source.clone(),
        destination: ms.target.trim_end_matches('/').to_string(),
        read_only: ms.read_only,
        propagation: String::new(),
        tmpfs_options: vec![],
        copy_image_data: false,
        mode: String::new(),
    };
    match ms.kind.as_str() {
        "bind" => {
            if !ms.source.starts_with('/') {
                return Err(format!("invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute", ms.source));
            }
            if !std::path::Path::new(&ms.source).exists() {
                return Err(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    ms.source
                ));
            }
            um.propagation = if ms.propagation.is_empty() {
                "rprivate".into()
            } else {
                ms.propagation.clone()
            };
        }
        "volume" => {
            if !ms.source.is_empty() {
                check_volume_name(&ms.source)?;
            }
            um.copy_image_data = !ms.no_copy;
        }
        "tmpfs" => {
            if !ms.source.is_empty() {
                return Err(
                    "invalid mount config for type \"tmpfs\": source must not be specified".into(),
                );
            }
            um.source = "tmpfs".into();
            if ms.tmpfs_size > 0 {
                um.tmpfs_options.push(format!("size={}", ms.tmpfs_size));
            }
            um.tmpfs_options.push(format!(
                "mode={:o}",
                if ms.tmpfs_mode == 0 {
                    0o1777
                } else {
                    ms.tmpfs_mode
                }
            ));
        }
        other => {
            return Err(format!(
                "invalid mount config: mount type unknown: \"{other}\""
            ))
        }
    }
    Ok(um)
}

/// All user mounts of a container: `-v`, `--mount`, `--tmpfs`, and the image's `VOLUME`s
/// not covered by one of those (anonymous volumes). Duplicate destinations are an error.
pub fn user_mounts(host: &HostSpec, image_volumes: &[String]) -> Result<Vec<UserMount>, String> {
    let mut out: Vec<UserMount> = Vec::new();
    for b in &host.binds {
        out.push(parse_bind(b)?);
    }
    for ms in &host.mounts {
        out.push(from_mount_spec(ms)?);
    }
    for (dest, opts) in &host.tmpfs {
        check_destination(dest)?;
        let mut options: Vec<String> = Vec::new();
        let mut ro = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => ro = true,
                "rw" => ro = false,
                _ => options.push(o.to_string()),
            }
        }
        out.push(UserMount {
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            destination: dest.trim_end_matches('/').to_string(),
            read_only: ro,
            propagation: String::new(),
            tmpfs_options: options,
            copy_image_data: false,
            mode: opts.clone(),
        });
    }
    for (i, a) in out.iter().enumerate() {
        if out[..i].iter().any(|b| b.destination == a.destination) {
            return Err(format!("Duplicate mount point: {}", a.destination));
        }
    }
    for v in image_volumes {
        let dest = v.trim_end_matches('/');
        if dest.is_empty() || out.iter().any(|m| m.destination == dest) {
            continue;
        }
        out.push(UserMount {
            kind: "volume".into(),
            source: String::new(),
            destination: dest.to_string(),
            read_only: false,
            propagation: String::new(),
            tmpfs_options: vec![],
            copy_image_data: true,
            mode: String::new(),
        });
    }
    // Parents before children (Docker sorts by path depth).
    out.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
    Ok(out)
}

/// The OCI mount for a user mount whose source is now a host path.
pub fn to_oci(um: &UserMount, host_source: &str) -> Value {
    match um.kind.as_str() {
        "tmpfs" => {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            opts.extend(um.tmpfs_options.iter().cloned());
            if um.read_only {
                opts.push("ro".into());
            }
            json!({"destination": um.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        _ => {
            let mut opts = vec!["rbind".to_string()];
            opts.push(if um.read_only { "ro" } else { "rw" }.to_string());
            let prop = if um.propagation.is_empty() {
                "rprivate"
            } else {
                um.propagation.as_str()
            };
            opts.push(prop.to_string());
            json!({"destination": um.destination, "type": "bind", "source": host_source, "options": opts})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_volumes_parse() {
        let b = parse_bind("/srv/data:/data:ro").unwrap();
        assert_eq!(
            (b.kind.as_str(), b.read_only, b.propagation.as_str()),
            ("bind", true, "rprivate")
        );
        let v = parse_bind("vol1:/var/lib/x").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_str(), v.copy_image_data),
            ("volume", "vol1", true)
        );
        let a = parse_bind("/anon").unwrap();
        assert_eq!((a.kind.as_str(), a.source.as_str()), ("volume", ""));
        assert!(!parse_bind("vol1:/x:nocopy").unwrap().copy_image_data);
        assert_eq!(parse_bind("/a:/b:rslave").unwrap().propagation, "rslave");
    }

    #[test]
    fn bad_binds_are_rejected() {
        for bad in [
            "/a:relative",
            "/a:/",
            "a:b:c:d",
            "/a:/b:bogus",
            "bad name!:/x",
            "/a:/../b",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_mounts_merge_sort_and_reject_duplicates() {
        let mut h = HostSpec {
            binds: vec!["/tmp:/a/b".into(), "vol:/a".into()],
            ..Default::default()
        };
        h.tmpfs.insert("/run".into(), "rw,size=1m".into());
        let ms = user_mounts(&h, &["/a/".into(), "/data".into()]).unwrap();
        let dests: Vec<_> = ms.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, vec!["/a", "/run", "/data", "/a/b"]);
        assert_eq!(ms[1].tmpfs_options, vec!["size=1m"]);
        h.binds.push("/tmp:/run".into());
        assert_eq!(
            user_mounts(&h, &[]).unwrap_err(),
            "Duplicate mount point: /run"
        );
    }

    #[test]
    fn oci_mount_shapes() {
        let b = parse_bind("/srv:/srv:ro").unwrap();
        let v = to_oci(&b, "/srv");
        assert_eq!(v["options"], json!(["rbind", "ro", "rprivate"]));
        let d = default_mounts(false, 0);
        assert_eq!(d.len(), 7);
        assert!(d.iter().any(|m| m["destination"] == "/dev/shm"
            && m["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=67108864"))));
    }
}
