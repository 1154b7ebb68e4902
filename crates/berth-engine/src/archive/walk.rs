//! The walk of a directory tree that `docker diff` ([`super::changes`]) and the archive
//! writer ([`super::pack`]) share.
//!
//! Through directory file descriptors only: each entry is `fstatat`'d with
//! `AT_SYMLINK_NOFOLLOW`, and a directory is opened with `O_NOFOLLOW` relative to its
//! already-open parent, so a symlink a running container swaps in mid-walk is met as a
//! symlink, never followed. Depth first, names sorted (Docker's tar and diff order); an
//! entry gone since its directory was listed is skipped.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::resolve;

/// One entry met by [`walk`].
pub(crate) struct Node<'a> {
    /// The open directory that holds the entry.
    pub parent: &'a OwnedFd,
    pub name: &'a OsStr,
    /// `lstat` of the entry.
    pub st: &'a Stat,
    /// The entry itself, open, when it is a directory.
    pub dir: Option<&'a OwnedFd>,
}

/// Calls `visit` for every entry under the open directory `dir`, with the value the visit
/// of the entry's directory returned (`at` for the entries of `dir` itself). A visit that
/// returns `Some` for a directory has the walk descend into it with that value.
pub(crate) fn walk<T>(
    dir: &OwnedFd,
    at: &T,
    visit: &mut impl FnMut(Node<'_>, &T) -> io::Result<Option<T>>,
) -> io::Result<()> {
    for name in sorted_names(dir)? {
        let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if changed_under_us(e) => continue,
            Err(e) => return Err(e.into()),
        };
        let sub = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            match open_dir(dir, &name) {
                Ok(fd) => Some(fd),
                Err(e) if changed_under_us(e) => continue,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let node = Node {
            parent: dir,
            name: &name,
            st: &st,
            dir: sub.as_ref(),
        };
        if let (Some(next), Some(sub)) = (visit(node, at)?, &sub) {
            walk(sub, &next, visit)?;
        }
    }
    Ok(())
}

/// An entry of a running container's tree that went away (`NOENT`), or stopped being a
/// directory, between the listing and the stat or open (`NOTDIR`, `LOOP`: it was swapped for
/// a file or a symlink): skipped, as a vanished one.
fn changed_under_us(e: Errno) -> bool {
    matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
}

/// Opens the directory `name` in `dir` for reading, never through a symlink.
pub(crate) fn open_dir(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The names in `dir` but `.` and `..`, sorted bytewise.
fn sorted_names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in Dir::read_from(dir)? {
        let e = e?;
        let n = OsStr::from_bytes(e.file_name().to_bytes());
        if !resolve::is_dot(n) {
            names.push(n.to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_depth_first_descending_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in ["b/inner", "a", "skip/hidden"] {
            std::fs::create_dir_all(r.join(p)).unwrap();
        }
        std::fs::write(r.join("b/inner/f"), b"x").unwrap();
        std::fs::write(r.join("c"), b"x").unwrap();
        std::os::unix::fs::symlink("/", r.join("b/up")).unwrap();
        let root = rustix::fs::open(r, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut seen = Vec::new();
        walk(&root, &String::new(), &mut |n, at: &String| {
            let path = format!("{at}/{}", n.name.to_string_lossy());
            let is_dir = FileType::from_raw_mode(n.st.st_mode) == FileType::Directory;
            assert_eq!(is_dir, n.dir.is_some(), "{path}");
            seen.push(path.clone());
            Ok((path != "/skip").then_some(path))
        })
        .unwrap();
        // the symlink `b/up -> /` is an entry, never followed
        assert_eq!(
            seen,
            ["/a", "/b", "/b/inner", "/b/inner/f", "/b/up", "/c", "/skip"]
        );
    }
}
