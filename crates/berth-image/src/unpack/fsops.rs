//! File operations of the unpacker on already-resolved directory fds: replacing entries,
//! ownership, modes, xattrs and mtimes (PAX values win over the tar header).

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps};
use rustix::io::Errno;

use super::UnpackError;

/// Copies with a large buffer; returns the bytes copied.
pub(super) fn copy_big(
    r: &mut impl Read,
    w: &mut impl io::Write,
    buf: &mut [u8],
) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        // fill as much of the buffer as the reader gives before writing
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(n);
        }
        w.write_all(&buf[..filled])?;
        n += filled as u64;
    }
}

/// Removes `name` in `dir` unless it is a directory and `keep_dir` says a directory comes.
pub(super) fn remove_existing(
    dir: &OwnedFd,
    name: &OsStr,
    keep_dir: Option<FileType>,
    shown: &str,
) -> Result<(), UnpackError> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => {
            return Err(UnpackError::Io {
                path: shown.into(),
                op: "stat",
                source: e.into(),
            })
        }
    };
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft == FileType::Directory && keep_dir == Some(FileType::Directory) {
        return Ok(());
    }
    let is_dir = ft == FileType::Directory;
    remove_entry(dir, name, is_dir).map_err(|e| UnpackError::Io {
        path: shown.into(),
        op: if is_dir {
            "replace directory"
        } else {
            "replace entry"
        },
        source: e,
    })
}

/// Removes `name` in `dir`: a directory with all it holds, anything else unlinked. Stays in
/// the tree: std's `remove_dir_all` opens each level with `O_NOFOLLOW`.
pub fn remove_entry(dir: &OwnedFd, name: &OsStr, is_dir: bool) -> std::io::Result<()> {
    if is_dir {
        let p = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(dir)
        ))
        .join(name);
        std::fs::remove_dir_all(&p)
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into)
    }
}

pub(super) fn chown_at(
    dir: &OwnedFd,
    name: &OsStr,
    uid: u32,
    gid: u32,
    shown: &str,
) -> Result<(), UnpackError> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw_unchecked(uid)),
        Some(rustix::fs::Gid::from_raw_unchecked(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| UnpackError::Io {
        path: shown.into(),
        op: "chown",
        source: e.into(),
    })
}

/// Ownership, mode, mtime and xattrs of an entry (PAX values win over the header).
pub(super) struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: i64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    pub fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Self, UnpackError> {
        let h = entry.header();
        let mut m = Meta {
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(UnpackError::Tar)? {
            for ext in pax.flatten() {
                let Ok(key) = ext.key() else { continue };
                let val = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(val)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    "uid" => m.uid = num().unwrap_or(m.uid as i64) as u32,
                    "gid" => m.gid = num().unwrap_or(m.gid as i64) as u32,
                    "mtime" => m.mtime = num().unwrap_or(m.mtime),
                    k if k.starts_with("SCHILY.xattr.") => {
                        let name = &k["SCHILY.xattr.".len()..];
                        // overlay's own xattrs (opaque, redirect, metacopy, origin) steer the
                        // mount; only the whiteout translation may set them, never a layer
                        if !name.starts_with("trusted.overlay.")
                            && !name.starts_with("user.overlay.")
                        {
                            m.xattrs.push((name.to_string(), val.to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(m)
    }

    /// chown, then chmod (chown clears set-id bits), then xattrs, through an open fd.
    pub fn apply_fd(&self, fd: impl AsFd, shown: &str) -> Result<(), UnpackError> {
        let io = |op, e: Errno| UnpackError::Io {
            path: shown.into(),
            op,
            source: e.into(),
        };
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw_unchecked(self.uid)),
            Some(rustix::fs::Gid::from_raw_unchecked(self.gid)),
        )
        .map_err(|e| io("chown", e))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode)).map_err(|e| io("chmod", e))?;
        for (k, v) in &self.xattrs {
            rustix::fs::fsetxattr(&fd, k.as_str(), v, rustix::fs::XattrFlags::empty())
                .map_err(|e| io("set xattr", e))?;
        }
        Ok(())
    }

    pub fn set_xattrs_path(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &str,
    ) -> Result<(), UnpackError> {
        if self.xattrs.is_empty() {
            return Ok(());
        }
        let p = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(dir)
        ))
        .join(name);
        for (k, v) in &self.xattrs {
            rustix::fs::lsetxattr(&p, k.as_str(), v, rustix::fs::XattrFlags::empty()).map_err(
                |e| UnpackError::Io {
                    path: shown.into(),
                    op: "set xattr",
                    source: e.into(),
                },
            )?;
        }
        Ok(())
    }

    pub fn set_mtime_fd(&self, fd: impl AsFd, shown: &str) -> Result<(), UnpackError> {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: 0,
        };
        rustix::fs::futimens(
            &fd,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(|e| UnpackError::Io {
            path: shown.into(),
            op: "set mtime",
            source: e.into(),
        })
    }

    pub fn set_mtime(&self, dir: &OwnedFd, name: &OsStr, shown: &str) -> Result<(), UnpackError> {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            dir,
            name,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| UnpackError::Io {
            path: shown.into(),
            op: "set mtime",
            source: e.into(),
        })
    }
}
