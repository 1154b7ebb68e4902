//! Writing a tar of a path inside a container root (`docker cp` out, `docker export`).
//!
//! The walk ([`super::walk`]) goes through directory file descriptors only: each entry is
//! `fstatat`'d with `AT_SYMLINK_NOFOLLOW` and opened with `O_NOFOLLOW` relative to its
//! already-open parent, so a symlink the container swaps in mid-walk is archived as a
//! symlink, never followed.
//!
//! Names are written as Docker writes them (`etc/`, `etc/passwd`; `./x` for `dir/.`): a
//! name the tar header cannot hold verbatim (long, or starting with `./`, which the `tar`
//! crate would normalise away) goes into a PAX `path` record, which Go's reader prefers.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::resolve;
use super::walk::{open_dir, walk, Node};

/// What to archive and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct PackOptions {
    /// Do not descend into directories on another filesystem than the top one (export:
    /// the rootfs without the mounts on it).
    pub one_filesystem: bool,
    /// Do not emit the top entry itself, only what is under it, with names relative to it
    /// (export: `bin/`, `bin/sh`, never `./`).
    pub skip_top: bool,
}

struct Packer<W: Write> {
    tar: tar::Builder<W>,
    opts: PackOptions,
    top_dev: u64,
    /// (dev, ino) of regular files with more than one link → the first name written.
    links: HashMap<(u64, u64), String>,
}

/// Writes a tar of `path` (inside `root`) to `out`, its top entry named `rebase`.
pub(crate) fn pack<W: Write>(
    root: &OwnedFd,
    path: &str,
    rebase: &str,
    out: W,
    opts: PackOptions,
) -> io::Result<W> {
    let (dir, name) = resolve::parent_and_name(root, path)?;
    let top = match &name {
        Some(n) => rustix::fs::statat(&dir, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?,
        None => rustix::fs::fstat(&dir)?,
    };
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let mut p = Packer {
        tar,
        opts,
        top_dev: top.st_dev,
        links: HashMap::new(),
    };
    // The top entry, then (a directory) what is under it.
    let under = match &name {
        Some(n) => {
            let sub = match FileType::from_raw_mode(top.st_mode) {
                FileType::Directory => Some(open_dir(&dir, n)?),
                _ => None,
            };
            let node = Node {
                parent: &dir,
                name: n,
                st: &top,
                dir: sub.as_ref(),
            };
            p.entry(node, rebase.to_string(), true)?.zip(sub)
        }
        None => p.dir_header(&top, rebase.to_string(), true)?.zip(Some(dir)),
    };
    if let Some((tarname, fd)) = under {
        walk(&fd, &tarname, &mut |node, parent: &String| {
            let name = child_name(parent, node.name);
            p.entry(node, name, false)
        })?;
    }
    p.tar.into_inner()
}

/// The tar name of `name` in the directory named `parent` (`""`: the top left out).
fn child_name(parent: &str, name: &OsStr) -> String {
    let n = String::from_utf8_lossy(name.as_bytes());
    if parent.is_empty() {
        n.into_owned()
    } else if parent.ends_with('/') {
        format!("{parent}{n}")
    } else {
        format!("{parent}/{n}")
    }
}

impl<W: Write> Packer<W> {
    /// Writes the entry `node` named `tarname`; for a directory, returns the name its
    /// entries go under, or `None` when they are left out.
    fn entry(&mut self, node: Node<'_>, tarname: String, top: bool) -> io::Result<Option<String>> {
        if FileType::from_raw_mode(node.st.st_mode) == FileType::Directory {
            return self.dir_header(node.st, tarname, top);
        }
        self.non_dir(node, &tarname)?;
        Ok(None)
    }

    /// Writes an entry that is not a directory (sockets are left out).
    fn non_dir(&mut self, node: Node<'_>, tarname: &str) -> io::Result<()> {
        let (dir, name, st) = (node.parent, node.name, node.st);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = header(st, tar::EntryType::Link);
                        h.set_size(0);
                        return self.append(h, tarname, Some(first.as_bytes()), &[], io::empty());
                    }
                    self.links.insert(key, tarname.to_string());
                }
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                )?;
                let mut pax = Vec::new();
                if let Ok(cap) = xattr(&fd, "security.capability") {
                    pax.push(("SCHILY.xattr.security.capability".to_string(), cap));
                }
                let file = std::fs::File::from(fd);
                let mut h = header(st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                // Exactly the size in the header, even if the file changes while read.
                let data = file
                    .take(st.st_size as u64)
                    .chain(io::repeat(0))
                    .take(st.st_size as u64);
                self.append(h, tarname, None, &pax, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let h = header(st, tar::EntryType::Symlink);
                self.append(h, tarname, Some(target.as_bytes()), &[], io::empty())
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let kind = match t {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.append(h, tarname, None, &[], io::empty())
            }
            // Sockets have no tar form (Go's archive/tar refuses them too); directories are
            // `dir_header`'s.
            _ => Ok(()),
        }
    }

    /// Writes a directory's own entry (unless it is the top and `skip_top`); returns the
    /// name its entries go under (`""`: bare names), or `None` for a mount point that
    /// `one_filesystem` leaves out.
    fn dir_header(&mut self, st: &Stat, tarname: String, top: bool) -> io::Result<Option<String>> {
        if top && self.opts.skip_top {
            return Ok(Some(String::new()));
        }
        let mut name = tarname.clone();
        if !name.ends_with('/') {
            name.push('/');
        }
        self.append(
            header(st, tar::EntryType::Directory),
            &name,
            None,
            &[],
            io::empty(),
        )?;
        if self.opts.one_filesystem && !top && st.st_dev != self.top_dev {
            return Ok(None);
        }
        Ok(Some(tarname))
    }

    fn append(
        &mut self,
        mut h: tar::Header,
        name: &str,
        link: Option<&[u8]>,
        extra_pax: &[(String, Vec<u8>)],
        data: impl Read,
    ) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = extra_pax.to_vec();
        let old = h.as_old_mut();
        let nb = name.as_bytes();
        if nb.len() < old.name.len() && !nb.starts_with(b"./") {
            old.name[..nb.len()].copy_from_slice(nb);
        } else {
            pax.push(("path".into(), nb.to_vec()));
            let short = &nb[..nb.len().min(99)];
            old.name[..short.len()].copy_from_slice(short);
        }
        if let Some(l) = link {
            if l.len() < old.linkname.len() {
                old.linkname[..l.len()].copy_from_slice(l);
            } else {
                pax.push(("linkpath".into(), l.to_vec()));
                old.linkname[..99].copy_from_slice(&l[..99]);
            }
        }
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        h.set_cksum();
        self.tar.append(&h, data)
    }
}

/// A GNU header (base-256 numbers for big ids and sizes) from a stat.
fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn xattr(fd: &impl AsFd, name: &str) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::fgetxattr(fd, name, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tarball: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tarball);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    fn tree() -> (tempfile::TempDir, OwnedFd) {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(r.join("etc/sub/a.txt"), b"a").unwrap();
        std::fs::hard_link(r.join("etc/sub/a.txt"), r.join("etc/sub/b.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("link")).unwrap();
        let long = "x".repeat(150);
        std::fs::write(r.join("etc").join(&long), b"long").unwrap();
        let root = rustix::fs::open(r, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        (d, root)
    }

    #[test]
    fn directory_entries_are_rebased_like_docker() {
        let (_d, root) = tree();
        let out = pack(&root, "/etc", "etc", Vec::new(), PackOptions::default()).unwrap();
        let n = names(&out);
        let long = format!("etc/{}", "x".repeat(150));
        assert_eq!(
            n.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            vec![
                "etc/",
                "etc/passwd",
                "etc/sub/",
                "etc/sub/a.txt",
                "etc/sub/b.txt",
                &long
            ]
        );
        assert_eq!(n[4].1, tar::EntryType::Link);
        // `dir/.`: the content under `./`, as moby writes it.
        let out = pack(&root, "/etc/.", ".", Vec::new(), PackOptions::default()).unwrap();
        let n = names(&out);
        assert_eq!(n[0].0, "./");
        assert_eq!(n[1].0, "./passwd");
        // A file, and a symlink archived as itself.
        let out = pack(
            &root,
            "/etc/passwd",
            "passwd",
            Vec::new(),
            PackOptions::default(),
        )
        .unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert!(s.starts_with("root:x"));
        let out = pack(&root, "/link", "link", Vec::new(), PackOptions::default()).unwrap();
        let n = names(&out);
        assert_eq!(n, vec![("link".to_string(), tar::EntryType::Symlink)]);
    }

    #[test]
    fn export_shape_has_no_top_entry() {
        let (_d, root) = tree();
        let opts = PackOptions {
            one_filesystem: true,
            skip_top: true,
        };
        let out = pack(&root, "/", "", Vec::new(), opts).unwrap();
        let n = names(&out);
        assert_eq!(n[0].0, "etc/");
        assert!(n.iter().any(|(p, _)| p == "link"));
        assert!(!n
            .iter()
            .any(|(p, _)| p.starts_with('/') || p.starts_with("./")));
    }
}
