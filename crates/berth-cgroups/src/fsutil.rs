//! Small helpers to read and write cgroupfs files with errors that name the file.

use crate::error::{CgroupError, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Read a whole file, trimmed.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| CgroupError::io(path, e))
}

/// Read a file; `None` when it does not exist (a controller or knob the kernel lacks).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io(path, e)),
    }
}

/// Parse a single unsigned number; `max` reads as `None`.
pub(crate) fn parse_u64_or_max(path: &Path, s: &str) -> Result<Option<u64>> {
    let s = s.trim();
    // "max" (v2) and "-1" (what was written to a v1 file, read back from a fake tree) mean unlimited.
    if s == "max" || s == "-1" {
        return Ok(None);
    }
    s.parse::<u64>().map(Some).map_err(|e| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("{s:?} is not a number: {e}"),
    })
}

/// Read a single-number file; missing file → 0, `max` → `u64::MAX`.
pub(crate) fn read_u64_or_zero(path: &Path) -> Result<u64> {
    match read_opt(path)? {
        None => Ok(0),
        Some(s) => Ok(parse_u64_or_max(path, &s)?.unwrap_or(u64::MAX)),
    }
}

/// Parse `key value` lines (memory.stat, cpu.stat, ...) into pairs; non-numeric values skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse::<u64>().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Look up one key in `key value` text.
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    parse_flat_keyed(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Write a value to a cgroup file (the kernel parses it on write; errors come back here).
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| CgroupError::io(path, e))
}

/// Create one directory level; an existing directory is fine.
pub(crate) fn mkdir(path: &Path) -> Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::io(path, e)),
    }
}

/// The directories from `root` down to `root/rel` (excluding `root` itself).
pub(crate) fn descend(root: &Path, rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = root.to_path_buf();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        cur.push(comp);
        out.push(cur.clone());
    }
    out
}

/// rmdir a cgroup directory. The kernel answers EBUSY for a moment after the last task
/// exits (it is still being reaped), so retry briefly; a missing directory is already gone.
pub(crate) fn rmdir_retry(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(1000);
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                // Live tasks will not go away by waiting: fail at once, naming them.
                let pids = read_pids(&dir.join("cgroup.procs")).unwrap_or_default();
                if !pids.is_empty() {
                    return Err(CgroupError::Busy {
                        path: dir.to_path_buf(),
                        pids,
                    });
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let pids = read_pids(&dir.join("cgroup.procs")).unwrap_or_default();
                return Err(CgroupError::Busy {
                    path: dir.to_path_buf(),
                    pids,
                });
            }
            Err(e) => return Err(CgroupError::io(dir, e)),
        }
    }
}

/// Parse a `cgroup.procs` file; missing → empty.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>> {
    let Some(text) = read_opt(path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|e| CgroupError::Parse {
                path: path.to_path_buf(),
                reason: format!("{l:?}: {e}"),
            })
        })
        .collect()
}

/// Total host memory (`MemTotal` of /proc/meminfo) in bytes: what an unlimited cgroup's
/// limit is reported as, like Docker does.
pub(crate) fn host_mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// Poll `check` until it says done or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// Validate a container cgroup path: absolute, no `..`, not the root.
pub(crate) fn check_rel(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.split('/').all(|c| c != ".." && c != ".")
        && path.split('/').any(|c| !c.is_empty());
    if ok {
        Ok(())
    } else {
        Err(CgroupError::Invalid {
            field: "cgroupsPath",
            reason: format!("{path:?} must be an absolute path below the hierarchy root, without '..', e.g. /berth/<id>"),
        })
    }
}
