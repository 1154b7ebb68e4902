//! Crash-safe state files: write to a temp file, fsync, rename over, fsync the directory.
//! A reader therefore sees either the old or the new content, never a torn file.

use std::path::Path;

/// Atomically replace `path` with `data`.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    berth_sys::file::write_atomic(path, data, 0o644)
}

/// Replace `path` with `data` through a temp file and a rename but without the fsyncs: a
/// reader still never sees a torn file, but a crash may lose the update or leave an empty
/// file. Only for state whose loss is harmless (a `--rm` container: removed after a crash).
pub fn write_volatile(path: &Path, data: &[u8]) -> std::io::Result<()> {
    berth_sys::file::write_replace(path, data, 0o644, false)
}

/// Serialize `value` as JSON and write it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

/// Read a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let data = std::fs::read(path)?;
    serde_json::from_slice(&data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temp-and-rename itself is tested in `berth_sys::file`; here the JSON round trip.
    #[test]
    fn json_round_trip_replaces_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        write_json(&p, &vec![1, 2, 3]).unwrap();
        write_json(&p, &vec![4]).unwrap();
        let v: Vec<i32> = read_json(&p).unwrap();
        assert_eq!(v, vec![4]);
    }

    #[test]
    fn torn_temp_does_not_hide_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        write_json(&p, &"old").unwrap();
        // A crash between create and rename leaves a temp file; the record stays intact.
        std::fs::write(dir.path().join(".config.json.tmp-1"), b"{trunc").unwrap();
        let v: String = read_json(&p).unwrap();
        assert_eq!(v, "old");
    }

    #[test]
    fn corrupt_file_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, b"{not json").unwrap();
        let e = read_json::<String>(&p).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }
}
