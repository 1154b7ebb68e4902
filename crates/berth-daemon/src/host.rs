//! Facts about the host for `/version` and `/info`, read from /proc and /sys once.

use std::path::Path;

/// Host facts that do not change while the daemon runs.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub kernel_version: String,
    pub operating_system: String,
    pub os_version: String,
    pub hostname: String,
    pub ncpu: i64,
    pub mem_total: i64,
    /// `"1"` or `"2"` (Docker reports the string).
    pub cgroup_version: String,
    pub ipv4_forwarding: bool,
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl HostFacts {
    pub fn read() -> HostFacts {
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |k: &str| {
            os_release
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|kb| kb.parse::<i64>().ok())
                    })
            })
            .map_or(0, |kb| kb * 1024);
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
        let cgroup_version = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "2"
        } else {
            "1"
        };
        HostFacts {
            kernel_version: read_trim("/proc/sys/kernel/osrelease"),
            operating_system: {
                let p = field("PRETTY_NAME");
                if p.is_empty() {
                    "Linux".into()
                } else {
                    p
                }
            },
            os_version: field("VERSION_ID"),
            hostname: read_trim("/proc/sys/kernel/hostname"),
            ncpu,
            mem_total,
            cgroup_version: cgroup_version.into(),
            ipv4_forwarding: read_trim("/proc/sys/net/ipv4/ip_forward") == "1",
        }
    }
}

/// Go's `GOARCH` name for the machine (Docker's `/version` `Arch`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A stable engine id kept in `data_root/engine-id` (Docker's `ID` in `/info`).
pub fn engine_id(data_root: &Path) -> String {
    let p = data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let _ = berth_sys::file::write_atomic(&p, id.as_bytes(), 0o644);
    id
}
