//! Security: what the process may do even as root.
//!
//! Root inside a container is limited by *capabilities* (the kernel's split of root's
//! powers; `CapEff` is what the process can use now, `CapBnd` the most it can ever get),
//! a *seccomp* filter (a BPF program the kernel runs on every system call: the profile
//! allows a list of calls and refuses the rest), *no_new_privs* (setuid binaries and file
//! capabilities cannot raise privileges) and *masked paths* (parts of /proc and /sys
//! hidden behind /dev/null or an empty read-only tmpfs).

use super::filesystem::parse_mountinfo;
use super::process::status_field;
use super::{read_proc, ExplainError};
use crate::record::ContainerRecord;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityFacts {
    /// `CapEff` as the kernel shows it (hex) and decoded.
    pub cap_eff_hex: String,
    pub cap_eff: Vec<String>,
    pub cap_bnd_hex: String,
    pub cap_bnd: Vec<String>,
    /// `disabled`, `strict` or `filter` (`/proc/<pid>/status` `Seccomp`).
    pub seccomp_mode: String,
    /// Number of seccomp filters attached (`Seccomp_filters`).
    pub seccomp_filters: u32,
    /// `default` (berth's built-in, Docker's list), `custom`, `unconfined`.
    pub seccomp_profile: String,
    /// The profile's default action and the number of syscalls it allows by name.
    pub seccomp_default_action: String,
    pub seccomp_allowed_syscalls: usize,
    pub no_new_privs: bool,
    pub masked_paths: Vec<MaskedPath>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaskedPath {
    pub path: String,
    /// `masked` (a mount hides it), `absent` (this kernel has no such file, nothing to
    /// hide) or `visible` (neither: it is readable in the container).
    pub state: String,
}

/// A capability mask (hex, as in `/proc/<pid>/status`) → names, lowest bit first.
pub fn decode_caps(hex: &str) -> Vec<String> {
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            crate::oci::caps::ALL_CAPS
                .get(b as usize)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("CAP_{b}"))
        })
        .collect()
}

/// The bundle's OCI spec (`config.json`), which the runtime applied.
pub(crate) fn bundle_spec(bundle: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

pub(crate) fn collect(
    rec: &ContainerRecord,
    spec: Option<&serde_json::Value>,
) -> Result<SecurityFacts, ExplainError> {
    let pid = rec.state.pid;
    let status = read_proc(pid, "status")?;
    let mounts = parse_mountinfo(&read_proc(pid, "mountinfo")?);
    let field = |k: &str| status_field(&status, k).unwrap_or("").to_string();
    let seccomp_mode = match field("Seccomp").as_str() {
        "0" => "disabled",
        "1" => "strict",
        "2" => "filter",
        _ => "unknown",
    }
    .to_string();
    let seccomp = spec
        .map(|s| &s["linux"]["seccomp"])
        .filter(|v| v.is_object());
    let (default_action, allowed) = match seccomp {
        Some(s) => (
            s["defaultAction"].as_str().unwrap_or("").to_string(),
            allowed_syscalls(s),
        ),
        None => (String::new(), 0),
    };
    let profile = profile_name(rec, seccomp.is_some());
    let masked_paths = spec
        .and_then(|s| s["linux"]["maskedPaths"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|p| MaskedPath {
                    path: p.to_string(),
                    state: mask_state(pid, p, &mounts).to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(SecurityFacts {
        cap_eff: decode_caps(&field("CapEff")),
        cap_eff_hex: field("CapEff"),
        cap_bnd: decode_caps(&field("CapBnd")),
        cap_bnd_hex: field("CapBnd"),
        seccomp_mode,
        seccomp_filters: field("Seccomp_filters").parse().unwrap_or(0),
        seccomp_profile: profile,
        seccomp_default_action: default_action,
        seccomp_allowed_syscalls: allowed,
        no_new_privs: field("NoNewPrivs") == "1",
        masked_paths,
    })
}

/// Syscall names the profile allows by rule (`SCMP_ACT_ALLOW`), counted once each.
pub fn allowed_syscalls(seccomp: &serde_json::Value) -> usize {
    let mut names = std::collections::BTreeSet::new();
    for rule in seccomp["syscalls"].as_array().into_iter().flatten() {
        if rule["action"].as_str() == Some("SCMP_ACT_ALLOW") {
            for n in rule["names"].as_array().into_iter().flatten() {
                if let Some(n) = n.as_str() {
                    names.insert(n.to_string());
                }
            }
        }
    }
    names.len()
}

fn profile_name(rec: &ContainerRecord, has_filter: bool) -> String {
    let h = &rec.config.host;
    let opt = h.security_opt.iter().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
    });
    match opt {
        Some("unconfined") => "unconfined".into(),
        Some(v) if !v.is_empty() && v != "builtin" => "custom".into(),
        _ if h.privileged => "unconfined (privileged)".into(),
        _ if has_filter => "default".into(),
        _ => "none".into(),
    }
}

fn mask_state(pid: i32, path: &str, mounts: &[super::filesystem::MountInfo]) -> &'static str {
    if mounts.iter().any(|m| m.target == path) {
        "masked"
    } else if !Path::new(&format!("/proc/{pid}/root{path}")).exists() {
        "absent"
    } else {
        "visible"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        // Docker's default set.
        let c = decode_caps("00000000a80425fb");
        assert_eq!(c.len(), 14);
        assert!(c.contains(&"CAP_CHOWN".to_string()));
        assert!(c.contains(&"CAP_NET_BIND_SERVICE".to_string()));
        assert!(!c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(decode_caps("0").is_empty());
    }

    #[test]
    fn syscalls_counted_once() {
        let v = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write", "clone"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}
            ]
        });
        assert_eq!(allowed_syscalls(&v), 3);
    }
}
