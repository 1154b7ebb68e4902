//! Layer unpacking: one layer tar (gzip, zstd or plain; detected from magic bytes) into its
//! own directory, with whiteouts turned into overlayfs form, and the diff ID computed.
//!
//! ## Why hostile layers cannot write outside their directory
//! Every entry is placed through file descriptors, never through joined path strings:
//! 1. the entry path is cleaned lexically (leading `/` and `.` dropped, `..` resolved); a
//!    path whose `..` would climb above the layer root is refused;
//! 2. the parent directory is opened with `openat2(root, parent, RESOLVE_IN_ROOT |
//!    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`. The kernel then treats the layer root as `/`
//!    for every component, including symlinks planted by earlier entries: `evil -> /etc` makes
//!    `evil/passwd` resolve to `<layer>/etc/passwd`, never the host's. This is the same model
//!    as Go's `os.Root`, which moby now uses, and cannot race with concurrent changes the way
//!    `lstat`-then-open checks can. Missing parents are created one component at a time with
//!    `mkdirat` on the already-resolved parent fd (a dangling symlink there is an error);
//! 3. the final component is created with `*at` calls on that fd that never follow a symlink
//!    (`O_NOFOLLOW|O_EXCL`, `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`);
//! 4. hardlink targets are cleaned and resolved the same way, so they can only name files
//!    already in this layer.
//! 5. xattrs from the tar that overlayfs itself interprets (`trusted.overlay.*`,
//!    `user.overlay.*`: redirect, metacopy, origin, opaque) are dropped, so a layer cannot
//!    steer the mount; only the whiteout translation below sets them.
//!
//! Whiteouts: `.wh.<name>` → a `c 0 0` device named `<name>`; `.wh..wh..opq` → the xattr
//! `trusted.overlay.opaque=y` on its directory (also in brand-new directories, which this
//! kernel's overlayfs marks opaque); other `.wh..wh.*` (AUFS metadata) are skipped.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::digest::{DiffId, Digest};

mod fsops;
mod zstd;
pub use fsops::{
    chown_at, create_file, link_target, make_dir, remove_entry, set_mtime, special_file, symlink,
    EntryError, Meta, MetaPolicy,
};
use fsops::{copy_big, remove_existing};

/// The xattr that marks an opaque directory for a rootful overlay mount.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Errors while unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} escapes the layer directory; refusing a hostile layer")]
    Escape { path: String },
    #[error("layer entry {path:?}: hardlink target {target:?} is not in this layer")]
    LinkTarget { path: String, target: String },
    #[error("layer entry {path:?} has an invalid whiteout name")]
    BadWhiteout { path: String },
    #[error("layer entry {path:?} has unsupported type {kind}")]
    Unsupported { path: String, kind: String },
    #[error("layer entry {path:?}: {op} failed: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("layer is not a valid tar stream: {0}")]
    Tar(io::Error),
    #[error("layer decompression failed: {0}")]
    Decompress(String),
}

/// What unpacking found.
#[derive(Clone, Debug)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: DiffId,
    /// Bytes of file content unpacked (the layer's size as `docker images` counts it).
    pub size: u64,
    /// Uncompressed tar bytes.
    pub tar_bytes: u64,
}

/// Counts and hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Reads the rest of the stream (tar padding, compression trailers) into the hash.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
    pub fn finish(self) -> (Digest, u64, R) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Wraps `input` in the right decompressor, sniffed from its first bytes.
fn decompressor<'a, R: Read + 'a>(input: R) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut br = BufReader::with_capacity(256 << 10, input);
    let head = br
        .fill_buf()
        .map_err(|e| UnpackError::Decompress(e.to_string()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::ZstdFrames::new(br)))
    } else {
        Ok(Box::new(br))
    }
}

/// Unpacks one layer from `input` (compressed or not) into the empty directory `dest`.
/// `input` is read to its end, so a caller hashing it sees every byte.
pub fn unpack_layer<R: Read>(input: &mut R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let dec = decompressor(&mut *input)?;
    let mut hashing = HashingReader::new(dec);
    let size = {
        let mut archive = tar::Archive::new(&mut hashing);
        let mut u = Unpacker::new(dest)?;
        let entries = archive.entries().map_err(UnpackError::Tar)?;
        for entry in entries {
            let mut entry = entry.map_err(classify_read_error)?;
            u.entry(&mut entry)?;
        }
        u.finish()?;
        u.size
    };
    hashing.drain().map_err(classify_read_error)?;
    let (diff_id, tar_bytes, dec) = hashing.finish();
    drop(dec);
    io::copy(input, &mut io::sink()).map_err(classify_read_error)?;
    Ok(UnpackStats {
        diff_id,
        size,
        tar_bytes,
    })
}

/// Errors from the reader chain keep their identity (network / verification errors come
/// through here wrapped in `io::Error`).
fn classify_read_error(e: io::Error) -> UnpackError {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            if e.get_ref()
                .is_some_and(|i| i.is::<crate::pull::StreamError>())
            {
                UnpackError::Io {
                    path: String::new(),
                    op: "read",
                    source: e,
                }
            } else {
                UnpackError::Tar(e)
            }
        }
        _ => UnpackError::Io {
            path: String::new(),
            op: "read",
            source: e,
        },
    }
}

/// Cleans a tar path lexically; `None` when `..` climbs out of the root. Shared with the
/// engine's archive upload (`PUT /containers/{id}/archive`), which takes hostile tars too.
pub fn clean(path: &Path) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Some(out)
}

/// The relative path of cleaned components (`.` for none).
pub fn join(c: &[OsString]) -> PathBuf {
    if c.is_empty() {
        return PathBuf::from(".");
    }
    c.iter().collect()
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

struct Unpacker {
    root: OwnedFd,
    /// Copy buffer: 8 KiB (io::copy's) costs one write(2) per 8 KiB of a layer.
    buf: Vec<u8>,
    /// Directory mtimes, applied at the end (entries inside would change them).
    dir_times: Vec<(Vec<OsString>, i64)>,
    size: u64,
}

impl Unpacker {
    fn new(dest: &Path) -> Result<Self, UnpackError> {
        let root = rustix::fs::open(
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| UnpackError::Io {
            path: dest.display().to_string(),
            op: "open layer dir",
            source: e.into(),
        })?;
        Ok(Unpacker {
            root,
            dir_times: Vec::new(),
            size: 0,
            buf: vec![0; 1 << 20],
        })
    }

    /// Opens (creating as needed) the directory `comps` inside the root; see the module docs.
    fn dir(
        &self,
        comps: &[OsString],
        flags: OFlags,
        create: bool,
        shown: &str,
    ) -> Result<OwnedFd, UnpackError> {
        let io = |op, e: Errno| UnpackError::Io {
            path: shown.to_string(),
            op,
            source: e.into(),
        };
        let flags = flags | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::openat2(&self.root, join(comps), flags, Mode::empty(), RESOLVE) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(io("open parent directory", e)),
        }
        let mut parent = rustix::fs::openat2(
            &self.root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| io("open layer root", e))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            let fd = match rustix::fs::openat2(
                &self.root,
                &prefix,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&parent, &comps[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        // a dangling symlink (or a racing creator): resolve again below
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(io("create parent directory", e)),
                    }
                    rustix::fs::openat2(&self.root, &prefix, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), RESOLVE)
                        .map_err(|e| io("open parent directory (a symlink in the path points nowhere in this layer)", e))?
                }
                Err(e) => return Err(io("open parent directory", e)),
            };
            parent = fd;
        }
        if flags.contains(OFlags::PATH) {
            return Ok(parent);
        }
        rustix::fs::openat2(&self.root, join(comps), flags, Mode::empty(), RESOLVE)
            .map_err(|e| io("open directory", e))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw_path = entry.path().map_err(UnpackError::Tar)?.into_owned();
        let shown = raw_path.display().to_string();
        let comps = clean(&raw_path).ok_or_else(|| UnpackError::Escape {
            path: shown.clone(),
        })?;
        let kind = entry.header().entry_type();
        let Some((name, parent)) = comps.split_last() else {
            // the root itself (`./`): apply its metadata only
            if kind == EntryType::Directory {
                let meta = Meta::read(entry, MetaPolicy::Strict)?;
                let fd = self.dir(&[], OFlags::RDONLY, false, &shown)?;
                meta.apply_fd(&fd, &shown)?;
                self.dir_times.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };
        let name_b = name.as_bytes();

        if let Some(wh) = name_b.strip_prefix(b".wh.") {
            if wh == b".wh..opq" {
                let dir = self.dir(parent, OFlags::RDONLY, true, &shown)?;
                rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                    .map_err(|e| UnpackError::Io {
                        path: shown,
                        op: "set opaque xattr",
                        source: e.into(),
                    })?;
                return Ok(());
            }
            if wh.starts_with(b".wh.") {
                return Ok(());
            }
            if wh.is_empty() || wh == b"." || wh == b".." || wh.contains(&b'/') {
                return Err(UnpackError::BadWhiteout { path: shown });
            }
            let meta = Meta::read(entry, MetaPolicy::Strict)?;
            let dir = self.dir(parent, OFlags::PATH, true, &shown)?;
            let target = OsStr::from_bytes(wh);
            remove_existing(&dir, target, None, &shown)?;
            rustix::fs::mknodat(
                &dir,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| UnpackError::Io {
                path: shown.clone(),
                op: "create whiteout",
                source: e.into(),
            })?;
            if meta.uid != 0 || meta.gid != 0 {
                chown_at(&dir, target, meta.uid, meta.gid, &shown)?;
            }
            return Ok(());
        }

        let meta = Meta::read(entry, MetaPolicy::Strict)?;
        let dir = self.dir(parent, OFlags::PATH, true, &shown)?;
        let io = |op, e: Errno| UnpackError::Io {
            path: shown.clone(),
            op,
            source: e.into(),
        };
        match kind {
            EntryType::Directory => {
                remove_existing(&dir, name, Some(FileType::Directory), &shown)?;
                let fd = make_dir(&dir, name, &shown)?;
                meta.apply_fd(&fd, &shown)?;
                self.dir_times.push((comps.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                // O_EXCL|O_NOFOLLOW never opens what is there (a planted symlink included);
                // only when something is there, it is removed and the create retried
                let create = || create_file(&dir, name);
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        remove_existing(&dir, name, None, &shown)?;
                        create()
                    }
                    other => other,
                }
                .map_err(|e| io("create file", e))?;
                let mut file = std::fs::File::from(fd);
                let n = copy_big(entry, &mut file, &mut self.buf).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                        classify_read_error(e)
                    }
                    _ => UnpackError::Io {
                        path: shown.clone(),
                        op: "write file",
                        source: e,
                    },
                })?;
                self.size += n;
                meta.apply_fd(&file, &shown)?;
                set_mtime(&file, None, meta.mtime, &shown)?;
            }
            EntryType::Symlink => {
                let target = link_target(entry, "symlink")?;
                remove_existing(&dir, name, None, &shown)?;
                symlink(&dir, name, &target, &meta, &shown)?;
                meta.set_xattrs_path(&dir, name, &shown)?;
            }
            EntryType::Link => {
                let target = link_target(entry, "hardlink")?;
                let tshown = target.display().to_string();
                let bad = || UnpackError::LinkTarget {
                    path: shown.clone(),
                    target: tshown.clone(),
                };
                let tcomps = clean(&target).ok_or_else(|| UnpackError::Escape {
                    path: format!("{shown} -> {tshown}"),
                })?;
                let (tname, tparent) = tcomps.split_last().ok_or_else(bad)?;
                let tdir = self
                    .dir(tparent, OFlags::PATH, false, &shown)
                    .map_err(|_| bad())?;
                let st = rustix::fs::statat(&tdir, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|_| bad())?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(bad());
                }
                if tcomps != comps {
                    remove_existing(&dir, name, None, &shown)?;
                    rustix::fs::linkat(
                        &tdir,
                        tname.as_os_str(),
                        &dir,
                        name.as_os_str(),
                        AtFlags::empty(),
                    )
                    .map_err(|e| io("hardlink", e))?;
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                remove_existing(&dir, name, None, &shown)?;
                special_file(&dir, name, entry.header(), &meta, &shown)?;
                meta.set_xattrs_path(&dir, name, &shown)?;
            }
            EntryType::XGlobalHeader => {}
            other => {
                return Err(UnpackError::Unsupported {
                    path: shown,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), UnpackError> {
        for (comps, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let shown = join(&comps).display().to_string();
            if let Ok(fd) = self.dir(&comps, OFlags::RDONLY, false, &shown) {
                set_mtime(&fd, None, mtime, &shown)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(
            join(&clean(Path::new("/a/./b/../c")).unwrap()),
            PathBuf::from("a/c")
        );
        assert!(clean(Path::new("../x")).is_none());
        assert!(clean(Path::new("a/../../x")).is_none());
        assert!(clean(Path::new("./")).unwrap().is_empty());
    }
}
