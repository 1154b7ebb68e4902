//! Snapshots: each layer unpacked once into `<image>/snapshots/<chainid-hex>/fs`, and
//! container root filesystems as an overlayfs of those directories plus a writable upper.
//!
//! Lifecycle of a snapshot: [`Snapshots::begin`] gives an empty directory under a temp name;
//! the unpacker fills it; [`Snapshots::commit`] renames it to its chain ID (if another pull
//! committed the same chain meanwhile, ours is discarded). A committed snapshot is immutable.
//!
//! Container rootfs: [`Snapshots::prepare_container_rootfs`] makes
//! `<image>/containers/<id>/{upper,work}` and lists the lowers top-most first, which is the
//! order overlayfs wants. [`mount`] uses one `mount(2)` when the options fit in a page, and
//! the new mount API (`fsopen` + `fsconfig lowerdir+` per layer, kernel ≥ 6.8) otherwise —
//! `mount(2)` data is capped at one page, which 128 layers with full paths exceed.
//! With an upper dir a single lower is fine (overlay wants ≥ 2 lowers only without upper).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::{ChainId, DiffId, Digest};
use crate::fsutil;
use crate::init_layer::MountPoint;
use crate::unpack::{self, UnpackError, UnpackStats};

/// Errors of the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {0} is missing; pull the image again")]
    Missing(ChainId),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-' and '.'")]
    BadContainerId(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("mounting overlay on {target}: {source}")]
    Mount { target: String, source: io::Error },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("layer diff ID {actual} does not match the expected {expected}")]
    DiffIdMismatch { expected: DiffId, actual: DiffId },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// The directories of a container's root filesystem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootfsMount {
    /// Layer directories, top-most first.
    pub lowerdirs: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// A snapshot being written (a temp directory; dropped without commit, it is removed).
pub struct PendingSnapshot {
    dir: PathBuf,
    committed: bool,
}

impl PendingSnapshot {
    /// Where the layer's files go.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for PendingSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The snapshot directory tree of a store.
#[derive(Clone, Debug)]
pub struct Snapshots {
    root: PathBuf,
    containers: PathBuf,
}

impl Snapshots {
    /// `image_root` is `<data_root>/image`.
    pub fn open(image_root: &Path) -> Result<Self, SnapshotError> {
        let root = image_root.join("snapshots");
        let containers = image_root.join("containers");
        for d in [&root, &containers] {
            std::fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        // leftovers of pulls interrupted by a crash
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(Snapshots { root, containers })
    }

    fn dir(&self, chain: &ChainId) -> PathBuf {
        self.root.join(chain.hex())
    }

    /// The directory of a layer stack's top layer (its files are in `fs`).
    pub(crate) fn layer_dir(&self, chain: &ChainId) -> PathBuf {
        self.dir(chain)
    }

    /// A fresh temp path at the top of the tree (leftovers are removed at open).
    pub(crate) fn temp_dir(&self, what: &str) -> PathBuf {
        self.root.join(fsutil::temp_name(&format!(".tmp-{what}-")))
    }

    /// The unpacked files of a layer stack's top layer.
    pub fn fs_dir(&self, chain: &ChainId) -> PathBuf {
        self.dir(chain).join("fs")
    }

    pub fn exists(&self, chain: &ChainId) -> bool {
        self.dir(chain).join("size").exists()
    }

    /// Bytes of file content in the snapshot (recorded at commit).
    pub fn size(&self, chain: &ChainId) -> Option<u64> {
        std::fs::read_to_string(self.dir(chain).join("size"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// All committed snapshots.
    pub fn list(&self) -> Vec<ChainId> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .collect()
    }

    /// An empty directory to unpack into.
    pub fn begin(&self) -> Result<PendingSnapshot, SnapshotError> {
        let dir = self.root.join(fsutil::temp_name(".tmp-"));
        std::fs::create_dir_all(dir.join("fs")).map_err(io_err("create", &dir))?;
        Ok(PendingSnapshot {
            dir,
            committed: false,
        })
    }

    /// Makes a filled pending snapshot the snapshot of `chain`.
    pub fn commit(
        &self,
        mut p: PendingSnapshot,
        chain: &ChainId,
        size: u64,
    ) -> Result<(), SnapshotError> {
        fsutil::write_atomic(&p.dir.join("size"), size.to_string().as_bytes(), 0o644)
            .map_err(io_err("write", &p.dir))?;
        let dest = self.dir(chain);
        match std::fs::rename(&p.dir, &dest) {
            Ok(()) => {
                p.committed = true;
                Ok(())
            }
            // committed by a concurrent pull: keep theirs, ours is dropped
            Err(e) if dest.join("size").exists() => {
                let _ = e;
                Ok(())
            }
            Err(e) => Err(io_err("commit snapshot", &dest)(e)),
        }
    }

    /// Unpacks a layer (any compression) on top of `parent` and commits it; returns the new
    /// chain ID and what the unpack found. `expected` diff ID, when given, must match.
    pub fn apply_layer(
        &self,
        parent: Option<&ChainId>,
        layer: &mut impl Read,
        expected: Option<&DiffId>,
    ) -> Result<(ChainId, UnpackStats), SnapshotError> {
        if let Some(p) = parent {
            if !self.exists(p) {
                return Err(SnapshotError::Missing(p.clone()));
            }
        }
        let pending = self.begin()?;
        let stats = unpack::unpack_layer(layer, &pending.fs())?;
        if let Some(e) = expected {
            if *e != stats.diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    expected: e.clone(),
                    actual: stats.diff_id,
                });
            }
        }
        let chain = match parent {
            None => stats.diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {}", stats.diff_id).as_bytes()),
        };
        if !self.exists(&chain) {
            self.commit(pending, &chain, stats.size)?;
        }
        Ok((chain, stats))
    }

    /// Removes a snapshot (the caller knows nothing uses it).
    pub fn remove(&self, chain: &ChainId) -> Result<(), SnapshotError> {
        let d = self.dir(chain);
        // rename first so a crash never leaves a half-deleted snapshot under its real name
        let tmp = self.root.join(fsutil::temp_name(".tmp-rm-"));
        match std::fs::rename(&d, &tmp) {
            Ok(()) => std::fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &d)(e)),
        }
    }

    fn container_dir(&self, container_id: &str) -> Result<PathBuf, SnapshotError> {
        let ok = !container_id.is_empty()
            && container_id.len() <= 128
            && !container_id.starts_with('.')
            && container_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            return Err(SnapshotError::BadContainerId(container_id.into()));
        }
        Ok(self.containers.join(container_id))
    }

    /// Creates the upper and work directories of a container over the layer stack `chains`
    /// (bottom first, as in [`crate::ImageRecord::layers`]). Idempotent.
    pub fn prepare_container_rootfs(
        &self,
        container_id: &str,
        chains: &[ChainId],
    ) -> Result<RootfsMount, SnapshotError> {
        self.prepare_container_rootfs_with(container_id, chains, true, &[])
    }

    /// [`Snapshots::prepare_container_rootfs`]; `durable: false` skips the fsyncs of the
    /// layer list (for a container that a crash removes anyway: `--rm`). The image's shared
    /// init layer with `mount_points` goes on top of its layers ([`crate::init_layer`]).
    pub fn prepare_container_rootfs_with(
        &self,
        container_id: &str,
        chains: &[ChainId],
        durable: bool,
        mount_points: &[MountPoint],
    ) -> Result<RootfsMount, SnapshotError> {
        let dir = self.container_dir(container_id)?;
        let mut lowerdirs = Vec::with_capacity(chains.len() + 1);
        for c in chains.iter().rev() {
            if !self.exists(c) {
                return Err(SnapshotError::Missing(c.clone()));
            }
            lowerdirs.push(self.fs_dir(c));
        }
        if let (Some(top), false) = (chains.last(), mount_points.is_empty()) {
            if let Some(init) = self.init_layer(top, &lowerdirs, mount_points)? {
                lowerdirs.insert(0, init);
            }
        }
        let m = RootfsMount {
            lowerdirs,
            upper: dir.join("upper"),
            work: dir.join("work"),
        };
        for d in [&m.upper, &m.work] {
            std::fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        if chains.is_empty() {
            // an image without layers (scratch): overlay still needs a lower
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(io_err("create", &empty))?;
            let mut m = m;
            m.lowerdirs.push(empty);
            fsutil::write_replace(&dir.join("layers.json"), b"[]", 0o644, durable)
                .map_err(io_err("write", &dir))?;
            return Ok(m);
        }
        let json = serde_json::to_vec(chains).expect("digests serialise");
        fsutil::write_replace(&dir.join("layers.json"), &json, 0o644, durable)
            .map_err(io_err("write", &dir))?;
        Ok(m)
    }

    /// Chain IDs used by existing container root filesystems (kept by GC).
    pub fn container_layers(&self) -> Vec<ChainId> {
        let Ok(rd) = std::fs::read_dir(&self.containers) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| std::fs::read(e.path().join("layers.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Vec<ChainId>>(&b).ok())
            .flatten()
            .collect()
    }

    /// Rewrites a container's layer list (what GC keeps for it) from its overlay lower dirs
    /// when the list is missing or unreadable: the list is written without fsync at create,
    /// the container's own record (fsync'd) is the truth, and the daemon repairs from it at
    /// start, before anything can collect. Returns whether it wrote.
    pub fn repair_container_layers(
        &self,
        container_id: &str,
        lowerdirs: &[PathBuf],
    ) -> Result<bool, SnapshotError> {
        let dir = self.container_dir(container_id)?;
        let path = dir.join("layers.json");
        let readable = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<ChainId>>(&b).ok())
            .is_some();
        if readable || !dir.exists() {
            return Ok(false);
        }
        // `<root>/<hex>/fs`, top first; the list is bottom first.
        let chains: Vec<ChainId> = lowerdirs
            .iter()
            .rev()
            .filter(|l| l.file_name().is_some_and(|n| n == "fs"))
            .filter(|l| l.parent().and_then(Path::parent) == Some(self.root.as_path()))
            .filter_map(|l| l.parent()?.file_name()?.to_str())
            .filter_map(|hex| ChainId::parse(&format!("sha256:{hex}")).ok())
            .collect();
        let json = serde_json::to_vec(&chains).expect("digests serialise");
        fsutil::write_atomic(&path, &json, 0o644).map_err(io_err("write", &dir))?;
        Ok(true)
    }

    /// Deletes a container's upper/work directories (unmount first).
    pub fn remove_container_rootfs(&self, container_id: &str) -> Result<(), SnapshotError> {
        let dir = self.container_dir(container_id)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}

/// Options for `mount(2)`; `index=off` as moby sets it (the inode index would tie the layer
/// directories to this one upper, and breaks when they are shared).
fn overlay_options(m: &RootfsMount, index_off: bool) -> String {
    let lowers: Vec<String> = m
        .lowerdirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut o = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        m.upper.display(),
        m.work.display()
    );
    if index_off {
        o.insert_str(0, "index=off,");
    }
    o
}

/// Largest options string sent through `mount(2)` (its data is one page, NUL included).
const MOUNT_DATA_MAX: usize = 4000;

/// Mounts the overlay of `m` on `target` (which must exist).
pub fn mount(m: &RootfsMount, target: &Path) -> Result<(), SnapshotError> {
    let merr = |source: io::Error| SnapshotError::Mount {
        target: target.display().to_string(),
        source,
    };
    let index_off = Path::new("/sys/module/overlay/parameters/index").exists();
    let opts = overlay_options(m, index_off);
    // ',' and ':' separate options and layers in mount(2) data; fsconfig takes each path whole
    let special = |p: &Path| p.as_os_str().to_string_lossy().contains([',', ':']);
    let any_special = m
        .lowerdirs
        .iter()
        .chain([&m.upper, &m.work])
        .any(|p| special(p));
    if opts.len() < MOUNT_DATA_MAX && !any_special {
        let data = std::ffi::CString::new(opts).map_err(|e| merr(io::Error::other(e)))?;
        return rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| merr(e.into()));
    }
    mount_new_api(m, target, index_off).map_err(merr)
}

/// `fsopen("overlay")`, one `lowerdir+` per layer (no length limit, no escaping), then
/// `fsmount` + `move_mount` onto the target.
fn mount_new_api(m: &RootfsMount, target: &Path, index_off: bool) -> io::Result<()> {
    use rustix::mount::*;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    if index_off {
        fsconfig_set_string(&fs, "index", "off")?;
    }
    for l in &m.lowerdirs {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
    }
    fsconfig_set_string(&fs, "upperdir", m.upper.as_path())?;
    fsconfig_set_string(&fs, "workdir", m.work.as_path())?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// Lazily unmounts a container rootfs (`MNT_DETACH` takes 0.2 ms where a full umount takes 2).
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    match rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(SnapshotError::Mount {
            target: target.display().to_string(),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_order_and_ids() {
        let m = RootfsMount {
            lowerdirs: vec!["/top".into(), "/bottom".into()],
            upper: "/u".into(),
            work: "/w".into(),
        };
        assert_eq!(
            overlay_options(&m, true),
            "index=off,lowerdir=/top:/bottom,upperdir=/u,workdir=/w"
        );
        let d = tempfile::tempdir().unwrap();
        let s = Snapshots::open(d.path()).unwrap();
        for bad in ["", "../x", ".hidden", "a/b"] {
            assert!(
                matches!(
                    s.prepare_container_rootfs(bad, &[]),
                    Err(SnapshotError::BadContainerId(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            s.prepare_container_rootfs("c1", &[Digest::of(b"x")]),
            Err(SnapshotError::Missing(_))
        ));
    }

    #[test]
    fn lost_layer_list_is_rebuilt_from_the_lower_dirs() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshots::open(d.path()).unwrap();
        let chains = [Digest::of(b"base"), Digest::of(b"top")];
        for c in &chains {
            std::fs::create_dir_all(s.fs_dir(c)).unwrap();
            std::fs::write(s.dir(c).join("size"), b"0").unwrap();
        }
        let m = s
            .prepare_container_rootfs_with("c1", &chains, false, &[])
            .unwrap();
        assert_eq!(s.container_layers(), chains.to_vec());
        // Intact: left alone.
        assert!(!s.repair_container_layers("c1", &m.lowerdirs).unwrap());
        // Lost (or torn) in a crash: rebuilt from the lower dirs the record keeps.
        let list = s.container_dir("c1").unwrap().join("layers.json");
        std::fs::write(&list, b"").unwrap();
        assert!(s.repair_container_layers("c1", &m.lowerdirs).unwrap());
        assert_eq!(s.container_layers(), chains.to_vec());
        std::fs::remove_file(&list).unwrap();
        assert!(s.repair_container_layers("c1", &m.lowerdirs).unwrap());
        assert_eq!(s.container_layers(), chains.to_vec());
        // A container without a rootfs dir: nothing to repair.
        assert!(!s.repair_container_layers("gone", &m.lowerdirs).unwrap());
    }
}
