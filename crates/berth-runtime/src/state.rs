//! What the runtime remembers about a container between invocations: one directory per
//! container under the runtime root, holding `state.json` (written atomically) and, until
//! `start`, the `exec.fifo` the init blocks on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hooks, LinuxSeccomp};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// OCI lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OCI state of a container (what `berth runtime state` prints), plus runc's extras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// The init's pid in the runtime's pid namespace; 0 once stopped.
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// runc extra: the rootfs directory.
    #[serde(default)]
    pub rootfs: PathBuf,
    /// runc extra: creation time, RFC 3339.
    #[serde(default)]
    pub created: String,
}

/// The on-disk record (`<root>/<id>/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/pid/stat) to detect pid reuse.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub oci_version: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup_path: String,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub seccomp: Option<LinuxSeccomp>,
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const FIFO: &str = "exec.fifo";

pub(crate) fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Record {
    pub fn load(root: &Path, id: &str) -> Result<Record> {
        let p = dir(root, id).join(STATE_FILE);
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
        };
        serde_json::from_slice(&data).map_err(|e| {
            Error::io(
                format!("parse {}; delete the container with --force", p.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Write-to-temp + rename (atomic for readers and against our own crash). No fsync:
    /// runtime state describes live processes, which do not survive a power loss either, and
    /// an fsync costs milliseconds on the start path when the root is not a tmpfs.
    pub fn save(&self, root: &Path) -> Result<()> {
        let d = dir(root, &self.id);
        let path = d.join(STATE_FILE);
        let data = serde_json::to_vec(self).expect("record serializes");
        berth_sys::file::write_replace(&path, &data, 0o644, false)
            .ctx(|| format!("write {}", path.display()))
    }

    /// Is our init still the process behind `pid`?
    pub fn alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|t| t == self.start_time)
    }

    pub fn to_state(&self, status: Status) -> State {
        State {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            annotations: self.annotations.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
        }
    }
}

/// Field 22 of /proc/<pid>/stat; `None` if the process is gone or a zombie.
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // rest starts at field 3 (state); starttime is field 22 → index 19 after state.
    fields.nth(18)?.parse().ok()
}

/// Container ids: what runc accepts.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// RFC 3339 UTC timestamp with nanoseconds, without a date crate.
pub(crate) fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3").is_ok());
        assert!(check_id("../x").is_err());
        assert!(check_id("").is_err());
        assert!(check_id("a/b").is_err());
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(proc_start_time(std::process::id() as i32).is_some());
    }

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20"));
    }
}
