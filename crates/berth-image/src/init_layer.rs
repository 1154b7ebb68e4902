//! The init layer: one small read-only layer per image, between its layers and each
//! container's upper dir, holding the mount points every container needs (`/proc`, `/sys`,
//! `/dev`, `/etc/hosts`, ...) that the image itself lacks.
//!
//! Why: without it the runtime creates those mount points at every start, through overlayfs
//! into the container's upper dir: a copy-up of `/etc`, a mkdir or create per point, ~10 new
//! inodes on the data root's filesystem per container and as many deletions at removal
//! (~0.5 ms per start in `perf` here). Docker makes an init layer per container; berth makes
//! it once per image and shares it, since its content depends only on the image.
//!
//! An entry is created only where the image has nothing at that path and every ancestor is
//! a plain directory (or absent) in every layer, so the layer never hides image content
//! (a `/etc` that is a symlink, an existing `/etc/hosts`, a whiteout). Other points are left
//! to the runtime, as before.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::digest::ChainId;
use crate::snapshot::{SnapshotError, Snapshots};

/// A path (relative to the rootfs) that containers mount over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountPoint {
    Dir(&'static str),
    File(&'static str),
}

impl MountPoint {
    fn path(&self) -> &'static str {
        match self {
            MountPoint::Dir(p) | MountPoint::File(p) => p,
        }
    }
}

/// What a layer has at one path.
enum Found {
    Nothing,
    Dir,
    Other,
}

fn found(layer: &Path, rel: &Path) -> Found {
    match std::fs::symlink_metadata(layer.join(rel)) {
        Ok(m) if m.file_type().is_dir() => Found::Dir,
        Ok(_) => Found::Other,
        Err(_) => Found::Nothing,
    }
}

/// Whether `p` can be added without hiding anything of the image (`lowerdirs`, any order).
fn missing_everywhere(lowerdirs: &[PathBuf], p: &str) -> bool {
    let rel = Path::new(p);
    // Ancestors first (outermost first), so no lookup below goes through a layer's symlink.
    let ancestors: Vec<&Path> = rel
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    for a in ancestors.iter().rev() {
        if lowerdirs
            .iter()
            .any(|l| matches!(found(l, a), Found::Other))
        {
            return false;
        }
    }
    lowerdirs
        .iter()
        .all(|l| matches!(found(l, rel), Found::Nothing))
}

/// A short tag naming the set of points, so a changed list makes a new layer.
fn tag(points: &[MountPoint]) -> String {
    let mut text = String::new();
    for p in points {
        let kind = match p {
            MountPoint::Dir(_) => 'd',
            MountPoint::File(_) => 'f',
        };
        text.push(kind);
        text.push_str(p.path());
        text.push('\n');
    }
    crate::digest::Digest::of(text.as_bytes()).hex()[..12].to_string()
}

impl Snapshots {
    /// The init layer of the image whose top layer is `top` (layers `lowerdirs`, top first),
    /// made on first use. `None` when the image already has every point.
    pub fn init_layer(
        &self,
        top: &ChainId,
        lowerdirs: &[PathBuf],
        points: &[MountPoint],
    ) -> Result<Option<PathBuf>, SnapshotError> {
        let dir = self.layer_dir(top).join(format!("init-{}", tag(points)));
        if dir.is_dir() {
            return Ok(Some(dir));
        }
        let wanted: Vec<MountPoint> = points
            .iter()
            .copied()
            .filter(|p| missing_everywhere(lowerdirs, p.path()))
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let tmp = self.temp_dir("init");
        let res = build(&tmp, &wanted).and_then(|()| std::fs::rename(&tmp, &dir));
        match res {
            Ok(()) => Ok(Some(dir)),
            // Another container of this image made it first.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(Some(dir))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(SnapshotError::Io {
                    op: "create init layer",
                    path: dir.display().to_string(),
                    source: e,
                })
            }
        }
    }
}

fn build(root: &Path, points: &[MountPoint]) -> io::Result<()> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o755);
    dirs.create(root)?;
    for p in points {
        let path = root.join(p.path());
        match p {
            MountPoint::Dir(_) => dirs.create(&path)?,
            MountPoint::File(_) => {
                if let Some(parent) = path.parent() {
                    dirs.create(parent)?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&path)?;
            }
        }
    }
    // Whatever the umask was.
    for p in points {
        let path = root.join(p.path());
        let mode = if std::fs::metadata(&path)?.mode() & 0o170000 == 0o040000 {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: &[MountPoint] = &[
        MountPoint::Dir("proc"),
        MountPoint::Dir("dev"),
        MountPoint::File("etc/hosts"),
        MountPoint::File("etc/hostname"),
    ];

    #[test]
    fn only_points_the_image_lacks_and_never_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let low = t.path().join("low");
        let top = t.path().join("top");
        std::fs::create_dir_all(low.join("etc")).unwrap();
        std::fs::write(low.join("etc/hosts"), "image's").unwrap();
        std::fs::create_dir_all(&top).unwrap();
        std::os::unix::fs::symlink("/", top.join("dev")).unwrap();
        let layers = vec![top.clone(), low.clone()];
        assert!(missing_everywhere(&layers, "proc"));
        assert!(!missing_everywhere(&layers, "dev"), "symlink in the image");
        assert!(
            !missing_everywhere(&layers, "etc/hosts"),
            "file in the image"
        );
        assert!(missing_everywhere(&layers, "etc/hostname"));
        // /etc a symlink in a higher layer: nothing under it.
        std::os::unix::fs::symlink("/tmp", top.join("etc")).unwrap();
        assert!(!missing_everywhere(&layers, "etc/hostname"));
    }

    #[test]
    fn made_once_shared_and_only_when_needed() {
        let t = tempfile::tempdir().unwrap();
        let s = Snapshots::open(t.path()).unwrap();
        let chain = ChainId::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let fs = s.fs_dir(&chain);
        std::fs::create_dir_all(fs.join("etc")).unwrap();
        std::fs::write(fs.join("etc/hosts"), "x").unwrap();
        let layers = vec![fs.clone()];
        let dir = s.init_layer(&chain, &layers, POINTS).unwrap().unwrap();
        assert!(dir.join("proc").is_dir() && dir.join("dev").is_dir());
        assert!(dir.join("etc/hostname").is_file());
        assert!(!dir.join("etc/hosts").exists(), "the image has it");
        let again = s.init_layer(&chain, &layers, POINTS).unwrap().unwrap();
        assert_eq!(dir, again);
        // No temp dirs left beside the layers.
        let names: Vec<String> = std::fs::read_dir(t.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![chain.hex().to_string()]);
        // An image with everything: no layer.
        let full = [MountPoint::File("etc/hosts")];
        assert_eq!(s.init_layer(&chain, &layers, &full).unwrap(), None);
    }
}
