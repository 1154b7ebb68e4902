//! The container's cgroup: path choice, OCI resources → berth_cgroups::Resources, and the
//! hierarchies to mount inside the container.

use berth_cgroups::{CgroupManager, CgroupPath, Layout, Resources};
use oci_spec::runtime::{LinuxResources, Spec};

use crate::error::{Error, Result};
use crate::rootfs::CgroupMount;

/// `linux.cgroupsPath` or `/berth/<id>`. A relative path is placed under `/berth`.
/// systemd-style `slice:prefix:name` paths are not supported (no systemd here).
pub(crate) fn path(spec: &Spec, id: &str) -> Result<CgroupPath> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    let p = match p {
        None => format!("/berth/{id}"),
        Some(p) if p.contains(':') => {
            return Err(Error::spec(
                "linux.cgroupsPath",
                format!("{p:?} looks like a systemd slice path; berth uses the cgroupfs driver, give a path like /berth/{id}"),
            ))
        }
        Some(p) if p.starts_with('/') => p,
        Some(p) => format!("/berth/{p}"),
    };
    if p.split('/').any(|c| c == "..") {
        return Err(Error::spec("linux.cgroupsPath", "must not contain '..'"));
    }
    Ok(CgroupPath(p))
}

pub(crate) fn open(p: &CgroupPath) -> Result<Box<dyn CgroupManager>> {
    Ok(berth_cgroups::open(p.clone())?)
}

/// OCI `linux.resources` → berth's resource set.
pub(crate) fn resources(r: Option<&LinuxResources>) -> Resources {
    let mut out = Resources::default();
    let Some(r) = r else { return out };
    if let Some(m) = r.memory() {
        out.memory_limit = m.limit();
        out.memory_reservation = m.reservation();
        out.memory_swap = m.swap();
    }
    if let Some(c) = r.cpu() {
        out.cpu_shares = c.shares();
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpuset_cpus = c.cpus().clone();
        out.cpuset_mems = c.mems().clone();
    }
    if let Some(p) = r.pids() {
        out.pids_limit = Some(p.limit());
    }
    if let Some(b) = r.block_io() {
        out.blkio_weight = b.weight();
    }
    out
}

/// What to mount at `/sys/fs/cgroup` inside the container.
pub(crate) fn mounts(mgr: &dyn CgroupManager) -> Vec<CgroupMount> {
    let dirs = mgr.paths();
    match Layout::host() {
        Ok(Layout::V1 { hierarchies }) => hierarchies
            .iter()
            .filter_map(|h| {
                let key = h.key();
                let host_dir = dirs.iter().find(|(k, _)| *k == key)?.1.clone();
                let name = h
                    .mount
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| key.clone());
                let data = if let Some(n) = key.strip_prefix("name=") {
                    format!("none,name={n}")
                } else {
                    key.clone()
                };
                let aliases = if h.controllers.len() > 1 {
                    h.controllers
                        .iter()
                        .filter(|c| **c != name && !c.starts_with("name="))
                        .cloned()
                        .collect()
                } else {
                    vec![]
                };
                Some(CgroupMount {
                    name,
                    fstype: "cgroup",
                    data,
                    host_dir,
                    aliases,
                })
            })
            .collect(),
        Ok(Layout::V2 { .. }) => dirs
            .first()
            .map(|(_, d)| {
                vec![CgroupMount {
                    name: String::new(),
                    fstype: "cgroup2",
                    data: String::new(),
                    host_dir: d.clone(),
                    aliases: vec![],
                }]
            })
            .unwrap_or_default(),
        Err(_) => vec![],
    }
}

/// Destroy, retrying briefly while the last tasks finish exiting.
pub(crate) fn destroy(mgr: &dyn CgroupManager) -> Result<()> {
    let mut last = None;
    for _ in 0..200 {
        match mgr.destroy() {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(last.expect("loop ran").into())
}

/// Devices every container may use (runc's list): mknod of anything (use still checked),
/// null, zero, full, random, urandom, tty, console, ptmx and the pty slaves.
const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The device cgroup (v1 `devices.allow`/`devices.deny`): deny everything, then the spec's
/// rules in order, then the defaults. On v2 device rules need an eBPF program, which berth
/// does not load yet: returns a warning instead.
pub(crate) fn apply_devices(
    mgr: &dyn CgroupManager,
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
) -> Result<Option<String>> {
    let Some((_, dir)) = mgr.paths().into_iter().find(|(k, _)| k == "devices") else {
        return Ok((!rules.is_empty()).then(|| {
            "linux.resources.devices: no v1 devices controller; device rules not enforced".into()
        }));
    };
    // Each file is opened once and takes one rule per write(2) (the kernel parses one rule
    // per write): ~14 opens of cgroup files fewer per start.
    let mut open: Vec<(&str, std::fs::File)> = Vec::with_capacity(2);
    let mut write = |file: &'static str, rule: &str, field: String| -> Result<()> {
        use std::io::Write;
        let err = |e: std::io::Error| Error::spec(field.clone(), format!("{rule:?}: {e}"));
        let pos = match open.iter().position(|(f, _)| *f == file) {
            Some(p) => p,
            None => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join(file))
                    .map_err(err)?;
                open.push((file, f));
                open.len() - 1
            }
        };
        open[pos].1.write_all(rule.as_bytes()).map_err(err)
    };
    write("devices.deny", "a", "linux.resources.devices".into())?;
    // Each distinct rule once: specs usually repeat the defaults appended below (Docker's
    // do), and every write is a syscall round on the start path.
    let mut written: std::collections::HashSet<(&str, String)> = std::collections::HashSet::new();
    written.insert(("devices.deny", "a".to_string()));
    for (i, r) in rules.iter().enumerate() {
        let typ = r
            .typ()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "a".into());
        let major = r
            .major()
            .map(|m| m.to_string())
            .unwrap_or_else(|| "*".into());
        let minor = r
            .minor()
            .map(|m| m.to_string())
            .unwrap_or_else(|| "*".into());
        let access = r
            .access()
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "rwm".into());
        let rule = if typ == "a" {
            "a".to_string()
        } else {
            format!("{typ} {major}:{minor} {access}")
        };
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        // A rule repeated after an opposite one must be written again (the order matters).
        let opposite = if r.allow() {
            "devices.deny"
        } else {
            "devices.allow"
        };
        if rule == "a" {
            // Allow or deny all: resets what came before, so always written.
            written.clear();
        }
        written.remove(&(opposite, rule.clone()));
        if written.insert((file, rule.clone())) {
            write(file, &rule, format!("linux.resources.devices[{i}]"))?;
        }
    }
    for rule in DEFAULT_ALLOWED_DEVICES {
        if written.insert(("devices.allow", rule.to_string())) {
            write("devices.allow", rule, "linux.resources.devices".into())?;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: &str) -> Spec {
        serde_json::from_str(&format!(r#"{{"ociVersion":"1.0.2","linux":{linux}}}"#)).unwrap()
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(path(&spec("{}"), "abc").unwrap().0, "/berth/abc");
        assert_eq!(
            path(&spec(r#"{"cgroupsPath":"/x/y"}"#), "abc").unwrap().0,
            "/x/y"
        );
        assert_eq!(
            path(&spec(r#"{"cgroupsPath":"y"}"#), "abc").unwrap().0,
            "/berth/y"
        );
        let e = path(&spec(r#"{"cgroupsPath":"system.slice:berth:abc"}"#), "abc").unwrap_err();
        assert!(e.to_string().contains("linux.cgroupsPath"), "{e}");
        assert!(path(&spec(r#"{"cgroupsPath":"/a/../b"}"#), "abc").is_err());
    }

    #[test]
    fn oci_resources_convert() {
        let s = spec(
            r#"{"resources":{"memory":{"limit":33554432,"reservation":1000,"swap":67108864},
                "cpu":{"shares":512,"quota":20000,"period":100000,"cpus":"0","mems":"0"},
                "pids":{"limit":20},"blockIO":{"weight":300}}}"#,
        );
        let r = resources(s.linux().as_ref().unwrap().resources().as_ref());
        assert_eq!(r.memory_limit, Some(33554432));
        assert_eq!(r.memory_reservation, Some(1000));
        assert_eq!(r.memory_swap, Some(67108864));
        assert_eq!(r.cpu_shares, Some(512));
        assert_eq!(r.cpu_quota, Some(20000));
        assert_eq!(r.cpu_period, Some(100000));
        assert_eq!(r.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(r.pids_limit, Some(20));
        assert_eq!(r.blkio_weight, Some(300));
        assert_eq!(resources(None), Resources::default());
    }
}
