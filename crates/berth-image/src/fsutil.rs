//! Crash-safe file writes: temp file in the same directory, fsync, rename, fsync the directory.

pub(crate) use berth_sys::file::temp_name;

/// Writes `data` to `path` atomically (temp + fsync + rename + fsync dir).
pub fn write_atomic(path: &std::path::Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    berth_sys::file::write_atomic(path, data, mode)
}

/// Writes `data` to `path` through a temp file and a rename, with the fsyncs when `durable`
/// (without, a reader still never sees a torn file, but a crash may lose the write).
pub fn write_replace(
    path: &std::path::Path,
    data: &[u8],
    mode: u32,
    durable: bool,
) -> std::io::Result<()> {
    berth_sys::file::write_replace(path, data, mode, durable)
}
