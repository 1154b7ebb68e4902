//! Container filesystems and bundles built at test time from what the machine has:
//! Debian's `busybox-static` for a rootfs, and berth's own static checker binary for
//! two-sided tests (the host drives, the checker inside reports what it sees).
//!
//! ```no_run
//! let dir = tempfile::tempdir().unwrap();
//! let rootfs = berth_testkit::rootfs::busybox_rootfs(dir.path()).unwrap();
//! berth_testkit::rootfs::with_checker(&rootfs).unwrap();
//! let bundle = berth_testkit::rootfs::bundle(dir.path(), |spec| {
//!     spec["process"]["args"] = serde_json::json!(["/bin/checker"]);
//! }).unwrap();
//! // bundle/config.json + bundle/rootfs, ready for `berth runtime run`.
//! # let _ = bundle;
//! ```

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The default `config.json` that `runc spec` (1.1.5) writes, with `rootfs` as root path.
pub const RUNC_SPEC: &str = include_str!("data/runc-spec.json");

/// Build `<dir>/rootfs`: busybox with a symlink per applet in /bin, /etc/passwd and
/// /etc/group (root and nobody), and the usual empty directories. Returns the rootfs path.
pub fn busybox_rootfs(dir: &Path) -> Result<PathBuf> {
    if !Path::new(BUSYBOX).exists() {
        bail!(
            "{BUSYBOX} not found; install Debian's busybox-static (apt-get install busybox-static)"
        );
    }
    let root = dir.join("rootfs");
    for d in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var", "usr/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).with_context(|| format!("mkdir {d}"))?;
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).context("copy busybox")?;
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let _ = symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    Ok(root)
}

/// Build (once per test process, serialised across processes with a file lock) and return
/// the static checker binary: `cargo build -p berth-checker --release` with
/// `+crt-static` in its own target dir, so nobody else's build cache is invalidated.
pub fn checker_binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| static_binary("berth-checker").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// The static `berth-init` (the `--init` PID 1), built like the checker.
pub fn init_binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| static_binary("berth-init").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Build workspace package `package` (whose binary has the same name) statically linked, in
/// `target/static` so nobody else's build cache is invalidated by the different RUSTFLAGS; a
/// file lock keeps parallel test processes from racing.
pub fn static_binary(package: &str) -> Result<PathBuf> {
    let ws = crate::workspace_root();
    let target = ws.join("target/static");
    std::fs::create_dir_all(&target)?;
    let lock = std::fs::File::create(target.join(format!(".{package}.lock")))?;
    lock.lock()
        .with_context(|| format!("lock the {package} build"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "-p", package, "--release"])
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .status()
        .with_context(|| format!("run cargo build for {package}"))?;
    if !st.success() {
        bail!("building {package} failed: {st}");
    }
    let bin = target.join("release").join(package);
    if !bin.exists() {
        bail!("{} missing after build", bin.display());
    }
    Ok(bin)
}

/// Copy the checker into `rootfs` as `/bin/checker`; returns the in-container path.
pub fn with_checker(rootfs: &Path) -> Result<PathBuf> {
    let bin = checker_binary()?;
    std::fs::copy(&bin, rootfs.join("bin/checker")).context("copy checker into rootfs")?;
    Ok(PathBuf::from("/bin/checker"))
}

/// Write `<dir>/config.json` as `runc spec` does (root `rootfs`, read-only, no terminal so
/// tests can capture output), let `tweak` edit the JSON, and return `dir`.
pub fn bundle(dir: &Path, tweak: impl FnOnce(&mut serde_json::Value)) -> Result<PathBuf> {
    let mut spec: serde_json::Value = serde_json::from_str(RUNC_SPEC)?;
    spec["process"]["terminal"] = serde_json::Value::Bool(false);
    tweak(&mut spec);
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_rootfs_has_sh_and_real_busybox() {
        if !Path::new(BUSYBOX).exists() {
            eprintln!("skipping: no busybox");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let r = busybox_rootfs(d.path()).unwrap();
        assert!(std::fs::symlink_metadata(r.join("bin/busybox"))
            .unwrap()
            .is_file());
        assert_eq!(
            std::fs::read_link(r.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
    }

    #[test]
    fn bundle_is_runc_shaped() {
        let d = tempfile::tempdir().unwrap();
        bundle(d.path(), |s| s["hostname"] = "x".into()).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["root"]["path"], "rootfs");
        assert_eq!(v["hostname"], "x");
        assert_eq!(v["process"]["terminal"], false);
    }
}
