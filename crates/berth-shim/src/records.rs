//! Files the shim leaves in its state dir, written atomically (temp + fsync + rename), so a
//! restarted daemon can re-adopt the shim or learn how the container ended.

use std::path::Path;

/// `STATE-DIR/shim.json`: who to talk to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShimRecord {
    pub shim_pid: i32,
    pub pid: i32,
    pub started_at: String,
}

/// `STATE-DIR/exit.json`: how the container ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitRecord {
    /// Exit status, or 128 + signal when killed by a signal.
    pub exit_code: i32,
    pub oom_killed: bool,
    pub finished_at: String,
    pub pid: i32,
}

/// `STATE-DIR/exec-<exec_id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecExitRecord {
    pub exit_code: i32,
}

pub const SHIM_JSON: &str = "shim.json";
pub const EXIT_JSON: &str = "exit.json";
pub const SOCKET: &str = "shim.sock";

pub fn exec_json(exec_id: &str) -> String {
    format!("exec-{exec_id}.json")
}

/// Write `value` as JSON to `dir/name` atomically and durably: temp file, one write, fsync,
/// rename, fsync of the directory.
pub fn write_atomic<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    write_replace(dir, name, value, true)
}

/// Write `value` as JSON to `dir/name` atomically (temp + rename: a reader sees the old or the
/// new file, never a torn one); `durable` adds the fsyncs that make it survive a power loss.
///
/// The shim writes all its records without them: the state dir lives in the exec root
/// (`/run/berth`), runtime state that a reboot wipes, so a power loss loses them anyway; and
/// they are on the start and exit paths, where two fsyncs on ext4 under load cost 5-20 ms. A
/// crash of the shim itself needs only the rename's atomicity. A torn `exit.json` after a
/// power loss with a disk-backed exec root reads as "no record" (the daemon then reports an
/// unknown exit), never as a wrong code; the daemon keeps the exit code durably in its own
/// container record.
pub fn write_replace<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable: bool,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    berth_sys::file::write_replace(&dir.join(name), &bytes, 0o644, durable)
}

/// Read a record; `None` when the file does not exist.
pub fn read<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> std::io::Result<Option<T>> {
    match std::fs::read(dir.join(name)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Exit code as the shell reports it: the status, or 128 + signal.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let r = ExitRecord {
            exit_code: 137,
            oom_killed: true,
            finished_at: "2026-11-28T05:00:00.000000001Z".into(),
            pid: 42,
        };
        write_atomic(d.path(), EXIT_JSON, &r).unwrap();
        assert_eq!(read::<ExitRecord>(d.path(), EXIT_JSON).unwrap(), Some(r));
        assert_eq!(read::<ExitRecord>(d.path(), "nope.json").unwrap(), None);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }
}
