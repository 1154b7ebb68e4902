//! Mount helpers the daemon needs before anything else runs.

use std::io;
use std::path::Path;

/// Make sure `dir` is on a tmpfs: nothing when it already is, else mount a fresh one there
/// (mode 0711) — only over an empty directory, never hiding state already kept there (an
/// older daemon's running containers). Returns whether a tmpfs was mounted now.
///
/// Why: the exec root holds only state that a reboot wipes (shim sockets, bundles, runtime
/// state, FIFOs) and every container start creates and deletes ~15 files in it. On a disk
/// filesystem each costs a journal update, and ext4's inode allocator slows down with every
/// recently deleted inode (measured: starts 1.5-2× slower after a few hundred runs). Most
/// distributions have `/run` on tmpfs; where it is not, the daemon brings its own. The mount
/// outlives the daemon, so a restarted daemon finds its running containers' state there.
pub fn ensure_tmpfs(dir: &Path) -> io::Result<bool> {
    let st = nix::sys::statfs::statfs(dir).map_err(io::Error::from)?;
    if st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC {
        return Ok(false);
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        return Ok(false);
    }
    nix::mount::mount(
        Some("berth-exec"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0711"),
    )
    .map_err(io::Error::from)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_tmpfs(p: &Path) -> bool {
        nix::sys::statfs::statfs(p)
            .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            .unwrap_or(false)
    }

    /// Unmounts on drop, also when an assertion fails.
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// Root tier: mounts only over an empty directory on a disk filesystem, never over one
    /// that holds files (an older daemon's state), and once.
    #[test]
    fn tmpfs_only_over_an_empty_disk_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: tmpfs_only_over_an_empty_disk_directory needs root");
            return;
        }
        // Beside the build output: a disk filesystem wherever /tmp is.
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp");
        std::fs::create_dir_all(&base).unwrap();
        let d = tempfile::tempdir_in(&base).unwrap();
        if on_tmpfs(d.path()) {
            eprintln!("skipped: {} is already on a tmpfs", base.display());
            return;
        }
        let busy = d.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("shim.sock"), b"").unwrap();
        assert!(
            !ensure_tmpfs(&busy).unwrap(),
            "a directory with files is left alone"
        );
        assert!(!on_tmpfs(&busy));
        assert!(busy.join("shim.sock").exists());

        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(ensure_tmpfs(&empty).unwrap());
        let _u = Unmount(&empty);
        assert!(on_tmpfs(&empty));
        assert!(
            !ensure_tmpfs(&empty).unwrap(),
            "already a tmpfs: nothing to do"
        );
    }
}
