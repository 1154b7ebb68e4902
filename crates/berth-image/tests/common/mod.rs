#![allow(dead_code)]
//! Shared helpers of berth-image's root-tier tests.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_image::{ImageRef, ImageStore, PullEvent, RegistryConfig};

pub fn store() -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::Builder::new()
        .prefix("berth-image-test-")
        .tempdir()
        .unwrap();
    let s = ImageStore::open(d.path(), RegistryConfig::default()).unwrap();
    (d, s)
}

pub fn store_with(cfg: RegistryConfig) -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::Builder::new()
        .prefix("berth-image-test-")
        .tempdir()
        .unwrap();
    let s = ImageStore::open(d.path(), cfg).unwrap();
    (d, s)
}

pub fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

/// Collects progress events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<PullEvent>>);

impl Events {
    pub fn sink(&self) -> impl Fn(PullEvent) + Send + Sync + '_ {
        move |e| self.0.lock().unwrap().push(e)
    }
    pub fn all(&self) -> Vec<PullEvent> {
        self.0.lock().unwrap().clone()
    }
    pub fn statuses(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                PullEvent::Status(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

/// Every path under `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A mounted overlay, unmounted on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_image::unmount(&self.0);
    }
}

pub fn mount_at(m: &berth_image::RootfsMount, dir: &Path) -> Mounted {
    let target = dir.join("merged");
    std::fs::create_dir_all(&target).unwrap();
    berth_image::mount(m, &target).unwrap();
    Mounted(target)
}

/// True when `p` is an overlay whiteout (char device 0/0).
pub fn is_whiteout(p: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

pub fn opaque(p: &Path) -> bool {
    let out = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "trusted.overlay.opaque"])
        .arg(p)
        .output();
    match out {
        Ok(o) => o.status.success() && o.stdout == b"y",
        Err(_) => rustix_getxattr(p),
    }
}

fn rustix_getxattr(_p: &Path) -> bool {
    panic!("getfattr (package attr) is needed to read xattrs in tests")
}
