//! `docker diff`: what a container changed, read from its overlay upper directory.
//!
//! Every entry of the upper directory is a change (moby's overlay `changes`):
//! - a character device 0/0 is a whiteout: the path was **deleted** (kind 2);
//! - a directory with `trusted.overlay.opaque=y` replaced a lower one: reported deleted
//!   too, as moby does (its new content follows as additions);
//! - anything else is **modified** (kind 0) when the path exists in a lower layer, else
//!   **added** (kind 1); a directory that exists below with the same mode is not itself a
//!   change, but the parent of any change is reported modified (once, before the child).
//!
//! Paths berth's runtime creates as mount points (`/proc`, `/sys`, `/dev`, `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf`) are left out: Docker keeps them in a hidden init layer.

use std::collections::HashSet;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};

use super::resolve::{self, IN_ROOT};
use super::walk::{walk, Node};

/// One change (`GET /containers/{id}/changes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// Docker's kinds: 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// Mount points the runtime makes in the upper directory (Docker's init layer).
const INIT_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
];

fn is_init_path(p: &str) -> bool {
    INIT_PATHS.contains(&p)
        || ["/dev/", "/proc/", "/sys/"]
            .iter()
            .any(|d| p.starts_with(d))
}

/// The changes of an upper directory over its lower directories (top-most first).
pub(crate) fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let open = |p: &Path| {
        rustix::fs::open(
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("open {}: {e}", p.display()),
            )
        })
    };
    let root = open(upper)?;
    let lower_fds: Vec<OwnedFd> = lowers.iter().filter_map(|l| open(l).ok()).collect();
    let mut w = Diff {
        lowers: lower_fds,
        out: Vec::new(),
        reported: HashSet::new(),
    };
    walk(&root, &String::new(), &mut |node, prefix: &String| {
        Ok(w.visit(node, prefix))
    })?;
    Ok(w.out)
}

struct Diff {
    lowers: Vec<OwnedFd>,
    out: Vec<Change>,
    reported: HashSet<String>,
}

impl Diff {
    fn lower_stat(&self, path: &str) -> Option<Stat> {
        let rel = resolve::rel(path);
        self.lowers.iter().find_map(|l| {
            let fd = rustix::fs::openat2(
                l,
                &rel,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                IN_ROOT,
            )
            .ok()?;
            rustix::fs::fstat(&fd).ok()
        })
    }

    fn record(&mut self, path: String, kind: ChangeKind) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !parent.is_empty() && !self.reported.contains(parent) {
                self.reported.insert(parent.to_string());
                self.out.push(Change {
                    path: parent.to_string(),
                    kind: ChangeKind::Modified,
                });
            }
        }
        if self.reported.insert(path.clone()) {
            self.out.push(Change { path, kind });
        }
    }

    /// Records the change `node` is, if any; its path to descend with when a directory.
    fn visit(&mut self, node: Node<'_>, prefix: &str) -> Option<String> {
        let path = format!("{prefix}/{}", String::from_utf8_lossy(node.name.as_bytes()));
        if is_init_path(&path) {
            return None;
        }
        let st = node.st;
        let ft = FileType::from_raw_mode(st.st_mode);
        let is_dir = ft == FileType::Directory;
        let whiteout = ft == FileType::CharacterDevice && st.st_rdev == 0;
        let opaque = node.dir.is_some_and(|fd| {
            let mut b = [0u8; 2];
            matches!(rustix::fs::fgetxattr(fd, "trusted.overlay.opaque", &mut b), Ok(1) if b[0] == b'y')
        });
        if whiteout || opaque {
            self.record(path.clone(), ChangeKind::Deleted);
        } else {
            match self.lower_stat(&path) {
                None => self.record(path.clone(), ChangeKind::Added),
                Some(l) => {
                    let same_dir = is_dir
                        && FileType::from_raw_mode(l.st_mode) == FileType::Directory
                        && l.st_mode == st.st_mode;
                    if !same_dir {
                        self.record(path.clone(), ChangeKind::Modified);
                    }
                }
            }
        }
        is_dir.then_some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_modified_deleted_and_parents() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        for p in ["etc", "usr/bin", "tmp"] {
            std::fs::create_dir_all(lower.join(p)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), b"x").unwrap();
        std::fs::write(lower.join("etc/group"), b"x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("tmp")).unwrap();
        std::fs::create_dir_all(upper.join("new/deep")).unwrap();
        std::fs::write(upper.join("etc/passwd"), b"y").unwrap();
        std::fs::write(upper.join("tmp/x"), b"y").unwrap();
        std::fs::write(upper.join("etc/hostname"), b"").unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        if rustix::process::geteuid().is_root() {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                upper.join("etc/group"),
                FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .unwrap();
        }
        // same mode as below: the directories themselves are no change
        let perm = std::fs::metadata(lower.join("etc")).unwrap().permissions();
        std::fs::set_permissions(upper.join("etc"), perm.clone()).unwrap();
        std::fs::set_permissions(upper.join("tmp"), perm).unwrap();
        let got: Vec<(String, ChangeKind)> = changes(&upper, &[lower])
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let mut want = vec![("/etc".to_string(), ChangeKind::Modified)];
        if rustix::process::geteuid().is_root() {
            want.push(("/etc/group".into(), ChangeKind::Deleted));
        }
        want.extend([
            ("/etc/passwd".into(), ChangeKind::Modified),
            ("/new".into(), ChangeKind::Added),
            ("/new/deep".into(), ChangeKind::Added),
            ("/tmp".into(), ChangeKind::Modified),
            ("/tmp/x".into(), ChangeKind::Added),
        ]);
        assert_eq!(got, want);
    }
}
