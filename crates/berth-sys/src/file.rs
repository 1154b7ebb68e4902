//! Replacing a file so that readers see the old content or the new, never a torn mix.
//!
//! One implementation for every crate's state files (container records, image indexes,
//! network state, shim records, credentials). The temp file is created with `O_EXCL` under
//! a name unique in the machine (pid, counter, time), so two writers of the same path in one
//! process, or in two, never write into each other's temp file; the last rename wins whole.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique within this machine for temp files and directories: `prefix`, pid,
/// a per-process counter and the time's nanoseconds.
pub fn temp_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{t:x}", std::process::id())
}

/// Replace `path` with `data` (file mode `mode`, before the umask): a temp file in the same
/// directory, then a rename over. With `durable`, the file is fsync'd before the rename and
/// the directory after, so the new content survives a power loss once this returns; without,
/// a crash may lose the update (or, for a new file, leave it empty) but a reader still never
/// sees a torn file. The directory is created if missing. On error the temp file is removed.
pub fn write_replace(path: &Path, data: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(temp_name(&format!(".{}.tmp-", name.to_string_lossy())));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        if durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// [`write_replace`] with the fsyncs.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_replace(path, data, mode, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/state.json");
        write_atomic(&p, b"first", 0o600).unwrap();
        write_replace(&p, b"2nd", 0o600, false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2nd");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn concurrent_writers_of_one_path_never_mix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("record");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    let data = vec![b'a' + i; 64 * 1024];
                    for _ in 0..20 {
                        write_replace(p, &data, 0o644, false).unwrap();
                        let got = std::fs::read(p).unwrap();
                        assert_eq!(got.len(), 64 * 1024);
                        assert!(got.iter().all(|b| *b == got[0]), "torn file");
                    }
                });
            }
        });
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn failure_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails, the temp file goes.
        let p = d.path().join("taken");
        std::fs::create_dir(p.join("x").parent().unwrap()).unwrap();
        std::fs::write(p.join("x"), b"").unwrap();
        assert!(write_atomic(&p, b"data", 0o644).is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write_atomic(Path::new("/"), b"", 0o644).is_err());
    }
}
