//! File operations on already-resolved directory fds, shared by the layer unpacker and the
//! engine's archive upload (`PUT /containers/{id}/archive`): replacing entries, special
//! files, ownership, modes, xattrs and mtimes (PAX values win over the tar header).
//!
//! Both read hostile tars; they differ only in how forgiving they are ([`MetaPolicy`]).

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use super::UnpackError;

/// A file operation on one tar entry failed. Each reader wraps it in its own error, which
/// names the archive (`layer entry …`, `archive entry …`).
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry's own headers are malformed (a bad PAX header under [`MetaPolicy::Strict`]).
    #[error("{0}")]
    Tar(io::Error),
    #[error("entry {path:?}: {op} failed: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
}

impl From<EntryError> for UnpackError {
    fn from(e: EntryError) -> Self {
        match e {
            EntryError::Tar(e) => UnpackError::Tar(e),
            EntryError::Io { path, op, source } => UnpackError::Io { path, op, source },
        }
    }
}

fn io_err<'a>(shown: &'a str, op: &'static str) -> impl FnOnce(Errno) -> EntryError + 'a {
    move |e| EntryError::Io {
        path: shown.into(),
        op,
        source: e.into(),
    }
}

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
    remove_entry(dir, name, ft == FileType::Directory, shown)?;
    Ok(())
}

/// Removes `name` in `dir`, what is in the way of an entry: a directory with all it holds,
/// anything else unlinked. Stays in the tree: std's `remove_dir_all` opens each level with
/// `O_NOFOLLOW`.
pub fn remove_entry(
    dir: &OwnedFd,
    name: &OsStr,
    is_dir: bool,
    shown: &str,
) -> Result<(), EntryError> {
    let r = if is_dir {
        let p = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(dir)
        ))
        .join(name);
        std::fs::remove_dir_all(&p)
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into)
    };
    r.map_err(|source| EntryError::Io {
        path: shown.into(),
        op: if is_dir {
            "replace directory"
        } else {
            "replace entry"
        },
        source,
    })
}

/// The target of a symlink or hardlink entry (`what` it is, for the error).
pub fn link_target<R: Read>(entry: &tar::Entry<'_, R>, what: &str) -> Result<PathBuf, EntryError> {
    entry
        .link_name()
        .map_err(EntryError::Tar)?
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| EntryError::Tar(io::Error::other(format!("{what} without a target"))))
}

/// Creates the directory `name` in `dir` (`0700` until the entry's mode is applied; one
/// already there is kept) and opens it, never through a symlink.
pub fn make_dir(dir: &OwnedFd, name: &OsStr, shown: &str) -> Result<OwnedFd, EntryError> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(io_err(shown, "mkdir")(e)),
    }
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err(shown, "open directory"))
}

/// Creates the regular file `name` in `dir` for writing (`0600` until the entry's mode is
/// applied). `O_EXCL|O_NOFOLLOW` never opens what is there, a planted symlink included:
/// `EEXIST` says something is in the way.
pub fn create_file(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
}

/// chown without following a symlink.
pub fn chown_at(
    dir: &OwnedFd,
    name: &OsStr,
    uid: u32,
    gid: u32,
    shown: &str,
) -> Result<(), EntryError> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw_unchecked(uid)),
        Some(rustix::fs::Gid::from_raw_unchecked(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io_err(shown, "chown"))
}

/// Sets atime and mtime to `mtime`: of `name` in `fd` (never following a symlink), or of
/// `fd` itself when `name` is `None`.
pub fn set_mtime(
    fd: impl AsFd,
    name: Option<&OsStr>,
    mtime: i64,
    shown: &str,
) -> Result<(), EntryError> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let ts = Timestamps {
        last_access: t,
        last_modification: t,
    };
    match name {
        Some(n) => rustix::fs::utimensat(fd, n, &ts, AtFlags::SYMLINK_NOFOLLOW),
        None => rustix::fs::futimens(fd, &ts),
    }
    .map_err(io_err(shown, "set mtime"))
}

/// Creates the character device, block device or fifo `name` in `dir` that `header`
/// describes, then its owner, mode and mtime from `meta` (xattrs are the caller's choice).
/// Nothing may be in the way: the caller has removed what was there.
pub fn special_file(
    dir: &OwnedFd,
    name: &OsStr,
    header: &tar::Header,
    meta: &Meta,
    shown: &str,
) -> Result<(), EntryError> {
    let ft = match header.entry_type() {
        EntryType::Char => FileType::CharacterDevice,
        EntryType::Block => FileType::BlockDevice,
        EntryType::Fifo => FileType::Fifo,
        other => {
            return Err(EntryError::Io {
                path: shown.into(),
                op: "mknod",
                source: io::Error::other(format!("{other:?} is not a special file")),
            })
        }
    };
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    rustix::fs::mknodat(
        dir,
        name,
        ft,
        Mode::empty(),
        rustix::fs::makedev(major, minor),
    )
    .map_err(io_err(shown, "mknod"))?;
    chown_at(dir, name, meta.uid, meta.gid, shown)?;
    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
        .map_err(io_err(shown, "chmod"))?;
    set_mtime(dir, Some(name), meta.mtime, shown)
}

/// Creates the symlink `name` in `dir` pointing at `target` (never resolved here), then its
/// owner and mtime from `meta` (xattrs are the caller's choice). Nothing may be in the way.
pub fn symlink(
    dir: &OwnedFd,
    name: &OsStr,
    target: &Path,
    meta: &Meta,
    shown: &str,
) -> Result<(), EntryError> {
    rustix::fs::symlinkat(target.as_os_str(), dir, name).map_err(io_err(shown, "symlink"))?;
    chown_at(dir, name, meta.uid, meta.gid, shown)?;
    set_mtime(dir, Some(name), meta.mtime, shown)
}

/// How forgiving [`Meta`] is: the two kinds of hostile tar berth reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaPolicy {
    /// A layer (pull, load, import): a malformed PAX header is an error, and so is an xattr
    /// the filesystem refuses.
    Strict,
    /// A client's upload (`docker cp`, `PUT /containers/{id}/archive`): a malformed PAX
    /// header is ignored (the tar header's values stand), and xattrs the filesystem or the
    /// caller cannot have are skipped, as Docker's `Untar` skips them.
    Lenient,
}

/// Ownership, mode, mtime and xattrs of an entry (PAX values win over the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: i64,
    /// Never overlay's own (`trusted.overlay.*`, `user.overlay.*`): those steer the mount.
    pub xattrs: Vec<(String, Vec<u8>)>,
    policy: MetaPolicy,
}

impl Meta {
    pub fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        policy: MetaPolicy,
    ) -> Result<Self, EntryError> {
        let h = entry.header();
        let mut m = Meta {
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            xattrs: Vec::new(),
            policy,
        };
        let pax = match entry.pax_extensions() {
            Ok(pax) => pax,
            Err(e) if policy == MetaPolicy::Strict => return Err(EntryError::Tar(e)),
            Err(_) => None,
        };
        for ext in pax.into_iter().flatten().flatten() {
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
                    // mount; only the whiteout translation may set them, never a tar
                    if !name.starts_with("trusted.overlay.") && !name.starts_with("user.overlay.") {
                        m.xattrs.push((name.to_string(), val.to_vec()));
                    }
                }
                _ => {}
            }
        }
        Ok(m)
    }

    /// An xattr's outcome under the policy: lenient skips what the filesystem or the caller
    /// cannot have.
    fn xattr_result(&self, r: rustix::io::Result<()>, shown: &str) -> Result<(), EntryError> {
        match r {
            Err(Errno::NOTSUP | Errno::PERM) if self.policy == MetaPolicy::Lenient => Ok(()),
            r => r.map_err(io_err(shown, "set xattr")),
        }
    }

    /// chown, then chmod (chown clears set-id bits), then xattrs, through an open fd.
    pub fn apply_fd(&self, fd: impl AsFd, shown: &str) -> Result<(), EntryError> {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw_unchecked(self.uid)),
            Some(rustix::fs::Gid::from_raw_unchecked(self.gid)),
        )
        .map_err(io_err(shown, "chown"))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode)).map_err(io_err(shown, "chmod"))?;
        for (k, v) in &self.xattrs {
            let r = rustix::fs::fsetxattr(&fd, k.as_str(), v, rustix::fs::XattrFlags::empty());
            self.xattr_result(r, shown)?;
        }
        Ok(())
    }

    /// The xattrs of `name` in `dir` (a symlink or special file: no fd to hold), never
    /// following a symlink.
    pub fn set_xattrs_path(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &str,
    ) -> Result<(), EntryError> {
        if self.xattrs.is_empty() {
            return Ok(());
        }
        let p = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(dir)
        ))
        .join(name);
        for (k, v) in &self.xattrs {
            let r = rustix::fs::lsetxattr(&p, k.as_str(), v, rustix::fs::XattrFlags::empty());
            self.xattr_result(r, shown)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_meta(input: impl Read, policy: MetaPolicy) -> Result<Meta, EntryError> {
        let mut a = tar::Archive::new(input);
        let mut entry = a.entries().unwrap().next().unwrap().unwrap();
        Meta::read(&mut entry, policy)
    }

    fn header(kind: EntryType, path: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_mtime(1000);
        h.set_cksum();
        h
    }

    #[test]
    fn pax_values_win_and_overlay_xattrs_are_dropped() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("uid", b"1234".as_slice()),
            ("mtime", b"5000.25"),
            ("SCHILY.xattr.user.keep", b"yes"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.user.overlay.redirect", b"/x"),
        ])
        .unwrap();
        b.append(&header(EntryType::Regular, "f", 0), io::empty())
            .unwrap();
        let tarball = b.into_inner().unwrap();
        for policy in [MetaPolicy::Strict, MetaPolicy::Lenient] {
            let m = first_meta(tarball.as_slice(), policy).unwrap();
            assert_eq!((m.uid, m.gid, m.mode, m.mtime), (1234, 0, 0o640, 5000));
            assert_eq!(m.xattrs, vec![("user.keep".to_string(), b"yes".to_vec())]);
        }
    }

    /// Fails every read, as a corrupt compressed stream does.
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt stream"))
        }
    }

    #[test]
    fn an_unreadable_pax_header_is_an_error_only_when_strict() {
        // A global PAX header whose records cannot be read.
        let h = header(EntryType::XGlobalHeader, "pax_global_header", 100);
        let input = || h.as_bytes().chain(Broken);
        let e = first_meta(input(), MetaPolicy::Strict).unwrap_err();
        assert!(matches!(e, EntryError::Tar(_)), "{e}");
        assert!(UnpackError::from(e).to_string().contains("corrupt stream"));
        // Lenient: the tar header's values stand.
        let m = first_meta(input(), MetaPolicy::Lenient).unwrap();
        assert_eq!((m.uid, m.mode, m.mtime), (7, 0o640, 1000));
        assert!(m.xattrs.is_empty());
    }

    #[test]
    fn lenient_skips_xattrs_the_filesystem_refuses() {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join("f")).unwrap();
        let mut m = Meta {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            mode: 0o600,
            mtime: 0,
            // a namespace no filesystem has: EOPNOTSUPP everywhere
            xattrs: vec![("nosuchns.x".into(), b"1".to_vec())],
            policy: MetaPolicy::Lenient,
        };
        m.apply_fd(&f, "f").unwrap();
        m.policy = MetaPolicy::Strict;
        let e = m.apply_fd(&f, "f").unwrap_err();
        assert!(e.to_string().contains("set xattr"), "{e}");
    }
}
