//! # berth-testkit: hermetic fixtures for berth's test tiers
//!
//! Everything a test needs is built from what the machine has, at test time:
//! - [`rootfs`]: a busybox rootfs from Debian's `busybox-static`, plus the static checker;
//! - [`registry`]: a real `docker-registry` (distribution 2.8) on 127.0.0.1, images built and pushed;
//! - [`unique`]: names for bridges, cgroups, tables and ports that never collide with
//!   another engine on the same kernel.
//!
//! Tiers: unit tests need nothing; `root` tests need root and a real kernel (CI runs as root);
//! tests call [`require_root`] and are skipped with a printed reason otherwise.

#![forbid(unsafe_code)]

pub mod fakecgroup;
pub mod harness;
pub mod images;
pub mod iptables;
pub mod netns;
pub mod oauth;
pub mod registry;
pub mod rootfs;
pub mod unique;

/// True when running as root; prints why a root-tier test is skipped otherwise.
pub fn require_root(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("skipping root-tier test {test}: not running as root");
    }
    root
}

/// Root of the cargo workspace (for locating built binaries).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("testkit lives in crates/berth-testkit")
        .to_path_buf()
}
