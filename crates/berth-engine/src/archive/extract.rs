//! Extracting a client's tar into a directory of a container (`docker cp` in): hostile input.
//!
//! The destination directory is the root of the extraction, as moby's `chrootarchive`
//! makes it: every entry is placed through `openat2(dest, parent, RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, so `..` and absolute symlinks (planted by an earlier entry or by
//! the container) resolve inside the destination, never above it. The final component is
//! created with `*at` calls that never follow a symlink (`O_EXCL|O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`); an entry whose cleaned path
//! climbs above the destination is refused; hardlinks may only name files already in it.
//! Overlay's own xattrs (`trusted.overlay.*`, `user.overlay.*`) are never set from a tar.
//!
//! Unlike a layer, `.wh.` names are ordinary files here (Docker's `Untar` does the same).

use berth_image::unpack::{
    clean, create_file, join, link_target, make_dir, remove_entry, set_mtime, special_file,
    symlink, EntryError, Meta, MetaPolicy,
};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::compression::{decompress, into_decode_error, DecodeError};
use super::resolve::IN_ROOT;

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory and vice versa.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: every entry owned by the container's user (uid, gid), as Docker does.
    pub chown: Option<(u32, u32)>,
}

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{0}")]
    Overwrite(String),
    #[error("archive entry {0:?} escapes the destination directory; refusing it")]
    Escape(String),
    #[error("archive entry {path:?}: hardlink target {target:?} is not in the destination")]
    LinkTarget { path: String, target: String },
    #[error("archive entry {path:?} has unsupported type {kind}")]
    Unsupported { path: String, kind: String },
    #[error("the archive is not a valid tar stream: {0}")]
    Tar(io::Error),
    #[error(transparent)]
    Decode(DecodeError),
    #[error("archive entry {path:?}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a str, op: &'static str) -> impl FnOnce(Errno) -> ExtractError + 'a {
    move |e| ExtractError::Io {
        path: path.to_string(),
        op,
        source: e.into(),
    }
}

impl From<EntryError> for ExtractError {
    fn from(e: EntryError) -> Self {
        match e {
            EntryError::Tar(e) => tar_error(e),
            EntryError::Io { path, op, source } => ExtractError::Io { path, op, source },
        }
    }
}

/// A read error of the archive: a [`DecodeError`] when its decompression failed.
fn tar_error(e: io::Error) -> ExtractError {
    match into_decode_error(e) {
        Ok(d) => ExtractError::Decode(d),
        Err(e) => ExtractError::Tar(e),
    }
}

/// Extracts `input` into the directory `dest` (an fd); returns the number of entries.
pub(crate) fn extract<R: Read>(
    dest: &OwnedFd,
    input: R,
    opts: &ExtractOptions,
) -> Result<u64, ExtractError> {
    let input = decompress(input).map_err(tar_error)?;
    let mut archive = tar::Archive::new(input);
    let mut x = Extractor {
        root: dest,
        opts,
        dir_times: Vec::new(),
    };
    let mut n = 0;
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        x.entry(&mut entry)?;
        n += 1;
    }
    x.finish();
    // The tar ends before its compression does (the record padding, the stream's checksum):
    // read a little further so a damaged end is reported, bounded, as the whole rest of a
    // hostile stream would only cost time (Docker reads nothing past the tar's end).
    let mut rest = archive.into_inner().take(TRAILER_LIMIT);
    io::copy(&mut rest, &mut io::sink()).map_err(tar_error)?;
    Ok(n)
}

/// How far past the tar's end [`extract`] reads (GNU tar pads to 10 KiB records).
const TRAILER_LIMIT: u64 = 1 << 20;

struct Extractor<'a> {
    root: &'a OwnedFd,
    opts: &'a ExtractOptions,
    dir_times: Vec<(Vec<OsString>, i64)>,
}

/// An entry's owner, mode, mtime and xattrs: a bad PAX header is ignored and xattrs the
/// filesystem refuses are skipped (Docker's `Untar`); `copyUIDGID` overrides the owner.
fn meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    chown: Option<(u32, u32)>,
) -> Result<Meta, ExtractError> {
    let mut m = Meta::read(entry, MetaPolicy::Lenient)?;
    if let Some((u, g)) = chown {
        m.uid = u;
        m.gid = g;
    }
    Ok(m)
}

impl Extractor<'_> {
    /// Opens (creating missing parents, 0755 root-owned as Docker makes them) the directory
    /// `comps` inside the destination.
    fn dir(&self, comps: &[OsString], shown: &str) -> Result<OwnedFd, ExtractError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let open = |p: &Path| rustix::fs::openat2(self.root, p, flags, Mode::empty(), IN_ROOT);
        match open(&join(comps)) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err(shown, "open parent directory")(e)),
        }
        let mut parent = open(Path::new(".")).map_err(io_err(shown, "open destination"))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            parent = match open(&prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&parent, &comps[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(shown, "create parent directory")(e)),
                    }
                    open(&prefix).map_err(io_err(
                        shown,
                        "open parent directory (a symlink in the path points nowhere)",
                    ))?
                }
                Err(e) => return Err(io_err(shown, "open parent directory")(e)),
            };
        }
        Ok(parent)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ExtractError> {
        let raw = entry.path().map_err(ExtractError::Tar)?.into_owned();
        let shown = raw.display().to_string();
        let comps = clean(&raw).ok_or_else(|| ExtractError::Escape(shown.clone()))?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        // The destination itself (`./`): Docker leaves it as it is.
        let Some((name, parent)) = comps.split_last() else {
            return Ok(());
        };
        let m = meta(entry, self.opts.chown)?;
        let dir = self.dir(parent, &shown)?;
        let is_dir = kind == EntryType::Directory;
        // What is there now.
        match rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let there_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                let shown_abs = format!("/{}", join(&comps).display());
                if self.opts.no_overwrite_dir_non_dir && there_dir && !is_dir {
                    return Err(ExtractError::Overwrite(format!(
                        "cannot overwrite directory {shown_abs:?} with non-directory {shown:?}"
                    )));
                }
                if self.opts.no_overwrite_dir_non_dir && !there_dir && is_dir {
                    return Err(ExtractError::Overwrite(format!(
                        "cannot overwrite non-directory {shown_abs:?} with directory {shown:?}"
                    )));
                }
                if !(there_dir && is_dir) {
                    remove_entry(&dir, name, there_dir, &shown)?;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err(&shown, "stat")(e)),
        }
        let name = name.as_os_str();
        match kind {
            EntryType::Directory => {
                let fd = make_dir(&dir, name, &shown)?;
                m.apply_fd(&fd, &shown)?;
                self.dir_times.push((comps.clone(), m.mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let fd = create_file(&dir, name).map_err(io_err(&shown, "create file"))?;
                let mut file = std::fs::File::from(fd);
                io::copy(entry, &mut file).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => tar_error(e),
                    _ => ExtractError::Io {
                        path: shown.clone(),
                        op: "write file",
                        source: e,
                    },
                })?;
                m.apply_fd(&file, &shown)?;
                set_mtime(&file, None, m.mtime, &shown)?;
            }
            EntryType::Symlink => {
                let target = link_target(entry, "symlink")?;
                symlink(&dir, name, &target, &m, &shown)?;
            }
            EntryType::Link => {
                let target = link_target(entry, "hardlink")?;
                let tshown = target.display().to_string();
                let bad = || ExtractError::LinkTarget {
                    path: shown.clone(),
                    target: tshown.clone(),
                };
                let tcomps = clean(&target).ok_or_else(bad)?;
                let (tname, tparent) = tcomps.split_last().ok_or_else(bad)?;
                let tdir = rustix::fs::openat2(
                    self.root,
                    join(tparent),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    IN_ROOT,
                )
                .map_err(|_| bad())?;
                let st = rustix::fs::statat(&tdir, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|_| bad())?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(bad());
                }
                rustix::fs::linkat(&tdir, tname.as_os_str(), &dir, name, AtFlags::empty())
                    .map_err(io_err(&shown, "hardlink"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                special_file(&dir, name, entry.header(), &m, &shown)?;
            }
            other => {
                return Err(ExtractError::Unsupported {
                    path: shown,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    /// Directory mtimes last (entries created inside changed them), deepest first.
    fn finish(&mut self) {
        for (comps, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            if let Ok(fd) = rustix::fs::openat2(
                self.root,
                join(&comps),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                IN_ROOT,
            ) {
                let _ = set_mtime(&fd, None, mtime, "");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> tar::Builder<Vec<u8>> {
        tar::Builder::new(Vec::new())
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000);
        // raw bytes: the tar crate refuses `..` in set_path, a hostile client does not
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o777);
        h.set_size(0);
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    fn root(p: &Path) -> OwnedFd {
        rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn files_land_inside_and_escapes_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let mut b = builder();
        file(&mut b, "a/b/c.txt", b"hello");
        link(&mut b, EntryType::Symlink, "evil", "/");
        file(&mut b, "evil/outside.txt", b"no");
        link(&mut b, EntryType::Symlink, "up", "../../..");
        file(&mut b, "up/up.txt", b"no");
        let tarball = b.into_inner().unwrap();
        let n = extract(&root(&dest), tarball.as_slice(), &ExtractOptions::default()).unwrap();
        assert_eq!(n, 5);
        assert_eq!(std::fs::read(dest.join("a/b/c.txt")).unwrap(), b"hello");
        // Through `evil -> /` and `up -> ../../..`: both resolve to the destination itself.
        assert_eq!(std::fs::read(dest.join("outside.txt")).unwrap(), b"no");
        assert_eq!(std::fs::read(dest.join("up.txt")).unwrap(), b"no");
        assert!(!outer.path().join("outside.txt").exists());
        assert!(!outer.path().join("up.txt").exists());

        let mut b = builder();
        file(&mut b, "../escape.txt", b"x");
        let e = extract(
            &root(&dest),
            b.into_inner().unwrap().as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ExtractError::Escape(_)), "{e}");
        assert!(!outer.path().join("escape.txt").exists());

        let mut b = builder();
        link(&mut b, EntryType::Link, "hl", "../../etc/passwd");
        let e = extract(
            &root(&dest),
            b.into_inner().unwrap().as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ExtractError::LinkTarget { .. }), "{e}");
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("dir")).unwrap();
        std::fs::write(d.path().join("file"), b"x").unwrap();
        let strict = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            chown: None,
        };
        let mut b = builder();
        file(&mut b, "dir", b"replaces a dir");
        let t = b.into_inner().unwrap();
        let e = extract(&root(d.path()), t.as_slice(), &strict).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        // Without the option, the directory is replaced.
        extract(&root(d.path()), t.as_slice(), &ExtractOptions::default()).unwrap();
        assert!(d.path().join("dir").is_file());
        // Replacing a file by a file is always fine, and chown applies.
        let mut b = builder();
        file(&mut b, "file", b"new");
        let own = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            chown: Some((1234, 5678)),
        };
        extract(&root(d.path()), b.into_inner().unwrap().as_slice(), &own).unwrap();
        let md = std::fs::metadata(d.path().join("file")).unwrap();
        use std::os::unix::fs::MetadataExt;
        if rustix::process::geteuid().is_root() {
            assert_eq!((md.uid(), md.gid()), (1234, 5678));
        }
        assert_eq!(md.mtime(), 1_000_000);
    }

    #[test]
    fn special_files_and_xattrs_the_filesystem_refuses() {
        let d = tempfile::tempdir().unwrap();
        let mut b = builder();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Fifo);
        h.set_path("pipe").unwrap();
        h.set_mode(0o640);
        h.set_mtime(2_000_000);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        // An xattr no filesystem has: skipped, as Docker's Untar skips it (a layer fails).
        b.append_pax_extensions([("SCHILY.xattr.nosuchns.x", b"1".as_slice())])
            .unwrap();
        file(&mut b, "withxattr", b"data");
        let t = b.into_inner().unwrap();
        let n = extract(&root(d.path()), t.as_slice(), &ExtractOptions::default()).unwrap();
        assert_eq!(n, 2);
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::symlink_metadata(d.path().join("pipe")).unwrap();
        assert!(md.file_type().is_fifo());
        assert_eq!((md.mode() & 0o7777, md.mtime()), (0o640, 2_000_000));
        assert_eq!(std::fs::read(d.path().join("withxattr")).unwrap(), b"data");
    }

    #[test]
    fn bzip2_and_xz_archives_extract_and_corrupt_ones_are_decode_errors() {
        use std::io::Write;
        let mut b = builder();
        file(&mut b, "dir/big.bin", &vec![7u8; 300_000]);
        file(&mut b, "dir/small.txt", b"hello");
        let tarball = b.into_inner().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tarball).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tarball).unwrap();
        for (name, packed) in [
            ("bzip2", bz.finish().unwrap()),
            ("xz", xz.finish().unwrap()),
        ] {
            let d = tempfile::tempdir().unwrap();
            let n = extract(
                &root(d.path()),
                packed.as_slice(),
                &ExtractOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(n, 2);
            assert_eq!(
                std::fs::read(d.path().join("dir/small.txt")).unwrap(),
                b"hello"
            );
            assert_eq!(
                std::fs::read(d.path().join("dir/big.bin")).unwrap(),
                vec![7u8; 300_000]
            );
            // Cut short: the stream ends inside the big file's content.
            let e = extract(
                &root(d.path()),
                &packed[..packed.len() / 2],
                &ExtractOptions::default(),
            )
            .unwrap_err();
            assert!(matches!(e, ExtractError::Decode(_)), "{name}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("the archive is not a valid {name} stream")),
                "{e}"
            );
            // Only its end missing (the stream's checksum, after the tar's last block).
            let e = extract(
                &root(d.path()),
                &packed[..packed.len() - 4],
                &ExtractOptions::default(),
            )
            .unwrap_err();
            assert!(matches!(e, ExtractError::Decode(_)), "{name}: {e}");
            // Damaged in the middle.
            let mut bad = packed.clone();
            let mid = bad.len() / 2;
            bad[mid..mid + 8].iter_mut().for_each(|b| *b ^= 0xff);
            let e =
                extract(&root(d.path()), bad.as_slice(), &ExtractOptions::default()).unwrap_err();
            assert!(matches!(e, ExtractError::Decode(_)), "{name}: {e}");
        }
    }

    #[test]
    fn garbage_is_a_tar_error() {
        let d = tempfile::tempdir().unwrap();
        let junk = vec![b'z'; 1024];
        let e = extract(&root(d.path()), junk.as_slice(), &ExtractOptions::default()).unwrap_err();
        assert!(matches!(e, ExtractError::Tar(_)), "{e}");
    }
}
