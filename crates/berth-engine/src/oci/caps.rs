//! Capabilities: Docker's default set, `--cap-add/--cap-drop` (with `ALL`), `--privileged`,
//! and clamping to what the engine itself holds (this host lacks CAP_SYS_RESOURCE, and a
//! runtime cannot grant a capability outside its own bounding set).

/// Every capability, indexed by number (`CAP_CHOWN` = 0 ... `CAP_CHECKPOINT_RESTORE` = 40).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `chown`, `CAP_CHOWN`, `cap_chown` → `CAP_CHOWN`; `all` → `ALL`.
fn normalize(cap: &str) -> Result<String, String> {
    let up = cap.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(format!("unknown capability: \"{cap}\""))
    }
}

/// The container's capability set, before clamping (moby `caps.TweakCapabilities`).
pub fn resolve(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, String> {
    let all = || ALL_CAPS.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if privileged {
        return Ok(all());
    }
    let add = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let add_all = add.iter().any(|c| c == "ALL");
    let drop_all = drop.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = match (add_all, drop_all) {
        (true, true) => all(),
        (true, false) => all().into_iter().filter(|c| !drop.contains(c)).collect(),
        (false, true) => add.clone(),
        (false, false) => {
            let mut v: Vec<String> = DEFAULT_CAPS
                .iter()
                .map(|s| s.to_string())
                .filter(|c| !drop.contains(c))
                .collect();
            for a in &add {
                if !v.contains(a) {
                    v.push(a.clone());
                }
            }
            v
        }
    };
    caps.sort_by_key(|c| ALL_CAPS.iter().position(|x| x == c));
    caps.dedup();
    Ok(caps)
}

/// The engine's own bounding set (from `/proc/self/status`); all caps when unreadable.
pub fn own_bounding_set() -> Vec<String> {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        });
    match mask {
        Some(m) => ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| m & (1u64 << i) != 0)
            .map(|(_, c)| c.to_string())
            .collect(),
        None => ALL_CAPS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Keep only the capabilities the engine can grant; the rest become warnings.
pub fn clamp(
    caps: Vec<String>,
    bounding: &[String],
    privileged: bool,
) -> (Vec<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut kept = Vec::new();
    for c in caps {
        if bounding.contains(&c) {
            kept.push(c);
        } else if !privileged {
            // Under --privileged the set is "everything we have", so silence is right.
            warnings.push(format!(
                "capability {c} is not available to berth on this host and was not granted"
            ));
        }
    }
    (kept, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_are_dockers_fourteen() {
        let c = resolve(&[], &[], false).unwrap();
        assert_eq!(c.len(), 14);
        assert!(c.contains(&"CAP_NET_RAW".to_string()));
        assert!(!c.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn add_and_drop_accept_short_names() {
        let c = resolve(&s(&["sys_admin"]), &s(&["NET_RAW", "cap_mknod"]), false).unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_NET_RAW".to_string()));
        assert!(!c.contains(&"CAP_MKNOD".to_string()));
        assert_eq!(c.len(), 13);
    }

    #[test]
    fn all_semantics() {
        assert_eq!(
            resolve(&s(&["chown"]), &s(&["ALL"]), false).unwrap(),
            s(&["CAP_CHOWN"])
        );
        let c = resolve(&s(&["all"]), &s(&["kill"]), false).unwrap();
        assert_eq!(c.len(), ALL_CAPS.len() - 1);
        assert!(resolve(&[], &s(&["ALL"]), false).unwrap().is_empty());
        assert_eq!(resolve(&[], &[], true).unwrap().len(), ALL_CAPS.len());
    }

    #[test]
    fn unknown_cap_is_an_error() {
        let e = resolve(&s(&["CAP_FOO"]), &[], false).unwrap_err();
        assert_eq!(e, "unknown capability: \"CAP_FOO\"");
    }

    #[test]
    fn clamping_warns_unless_privileged() {
        let bounding = s(&["CAP_CHOWN", "CAP_KILL"]);
        let (k, w) = clamp(s(&["CAP_CHOWN", "CAP_SYS_RESOURCE"]), &bounding, false);
        assert_eq!(k, s(&["CAP_CHOWN"]));
        assert_eq!(w.len(), 1);
        let (k, w) = clamp(s(&["CAP_CHOWN", "CAP_SYS_RESOURCE"]), &bounding, true);
        assert_eq!(k, s(&["CAP_CHOWN"]));
        assert!(w.is_empty());
    }

    #[test]
    fn own_bounding_set_is_readable() {
        assert!(!own_bounding_set().is_empty());
    }
}
