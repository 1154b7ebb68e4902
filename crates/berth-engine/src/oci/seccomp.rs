//! Docker's seccomp profile format → the OCI `linux.seccomp` object.
//!
//! Docker's profile (moby `profiles/seccomp/default.json`, shipped in `profiles/`) is an
//! allowlist whose rules carry conditions the OCI format does not have: `includes` /
//! `excludes` by capability, architecture and minimum kernel. Conversion resolves them for
//! *this* container (its capability set) on *this* host (arch, kernel), exactly as moby's
//! `setupSeccomp` does: a rule is kept when every included capability is present, no
//! excluded capability is, and the arch/kernel match. `clone3` keeps Docker's `ENOSYS`
//! answer (glibc then falls back to `clone`).

use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Docker's built-in default profile.
pub const DEFAULT_PROFILE: &str = include_str!("../../profiles/seccomp-default.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Value>>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// The host as the conversion sees it.
#[derive(Debug, Clone)]
pub struct Host {
    /// Go's arch name: `amd64`, `arm64`, ...
    pub go_arch: &'static str,
    /// libseccomp's: `SCMP_ARCH_X86_64`, ...
    pub scmp_arch: &'static str,
    /// (major, minor).
    pub kernel: (u32, u32),
}

impl Host {
    pub fn current() -> Host {
        let (go_arch, scmp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            _ => ("amd64", "SCMP_ARCH_X86_64"),
        };
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_kernel(&s))
            .unwrap_or((0, 0));
        Host {
            go_arch,
            scmp_arch,
            kernel,
        }
    }
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The parsed default profile (parsed once per process).
pub fn default_profile() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| serde_json::from_str(DEFAULT_PROFILE).expect("the shipped profile parses"))
}

/// Parse a user-given profile (`--security-opt seccomp=FILE` contents).
pub fn parse_profile(json: &str) -> Result<Profile, String> {
    serde_json::from_str(json).map_err(|e| format!("decoding seccomp profile failed: {e}"))
}

/// Convert `profile` for a container holding `caps` (names like `CAP_SYS_ADMIN`).
pub fn to_oci(profile: &Profile, caps: &[String], host: &Host) -> Value {
    let mut architectures: Vec<String> = Vec::new();
    if let Some(map) = &profile.arch_map {
        for a in map {
            if a.architecture == host.scmp_arch {
                architectures.push(a.architecture.clone());
                architectures.extend(a.sub_architectures.clone().unwrap_or_default());
            }
        }
    } else if let Some(a) = &profile.architectures {
        architectures = a.clone();
    }
    let has = |c: &String| caps.iter().any(|x| x == c);
    let kernel_ok = |f: &Filter| match f.min_kernel.as_deref().and_then(parse_kernel) {
        Some(min) => host.kernel >= min,
        None => true,
    };
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        if !rule.excludes.caps.is_empty() && rule.excludes.caps.iter().any(has) {
            continue;
        }
        if rule.excludes.arches.iter().any(|a| a == host.go_arch) {
            continue;
        }
        if rule.excludes.min_kernel.is_some() && kernel_ok(&rule.excludes) {
            continue;
        }
        if !rule.includes.arches.is_empty()
            && !rule.includes.arches.iter().any(|a| a == host.go_arch)
        {
            continue;
        }
        if !rule.includes.caps.iter().all(has) {
            continue;
        }
        if !kernel_ok(&rule.includes) {
            continue;
        }
        let mut names = rule.names.clone();
        if let Some(n) = &rule.name {
            names.push(n.clone());
        }
        let mut s = json!({ "names": names, "action": rule.action });
        if let Some(args) = &rule.args {
            s["args"] = Value::Array(args.clone());
        }
        if let Some(e) = rule.errno_ret {
            s["errnoRet"] = json!(e);
        }
        syscalls.push(s);
    }
    let mut out = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(e) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if let Some(f) = &profile.flags {
        out["flags"] = json!(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            go_arch: "amd64",
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel: (6, 18),
        }
    }

    fn rules_for<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    fn default_caps() -> Vec<String> {
        super::super::caps::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn default_profile_resolves_for_default_caps() {
        let v = to_oci(default_profile(), &default_caps(), &host());
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // clone3 → ENOSYS without CAP_SYS_ADMIN.
        let c3 = rules_for(&v, "clone3");
        assert_eq!(c3.len(), 1);
        assert_eq!(c3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(c3[0]["errnoRet"], 38);
        // clone allowed only with the namespace-flag mask, amd64 ordering (arg 0).
        let clone = rules_for(&v, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["index"], 0);
        // arch-specific rules: arch_prctl kept, s390 ones dropped.
        assert_eq!(rules_for(&v, "arch_prctl").len(), 1);
        assert!(rules_for(&v, "s390_runtime_instr").is_empty());
        // cap-gated: chroot (SYS_CHROOT is default) kept, reboot (SYS_BOOT) not.
        assert_eq!(rules_for(&v, "chroot").len(), 1);
        assert!(rules_for(&v, "reboot").is_empty());
        // minKernel 4.8 satisfied: ptrace allowed.
        assert_eq!(rules_for(&v, "ptrace").len(), 1);
        // the result is a valid OCI object.
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
    }

    #[test]
    fn sys_admin_changes_clone_rules() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let v = to_oci(default_profile(), &caps, &host());
        let c3 = rules_for(&v, "clone3");
        assert!(c3.iter().all(|r| r["action"] == "SCMP_ACT_ALLOW"), "{c3:?}");
        assert!(rules_for(&v, "clone")
            .iter()
            .all(|r| r.get("args").is_none()));
    }

    #[test]
    fn old_kernel_drops_min_kernel_rules() {
        let mut h = host();
        h.kernel = (4, 4);
        let v = to_oci(default_profile(), &default_caps(), &h);
        assert!(rules_for(&v, "ptrace").is_empty());
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.18.44-fc-v669\n"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }

    #[test]
    fn bad_user_profile_is_an_error() {
        assert!(parse_profile("{").is_err());
        let p = parse_profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        let v = to_oci(&p, &[], &host());
        assert_eq!(v["syscalls"][0]["names"][0], "mkdir");
    }
}
