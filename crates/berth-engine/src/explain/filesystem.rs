//! The filesystem: what the process sees as `/`.
//!
//! The root is an *overlay* mount: the image's layers are read-only `lowerdir`s (top
//! first), the container's writes go to its own `upperdir`, and `workdir` is overlay's
//! scratch space. Each lowerdir is one of berth's snapshots, keyed by the layer's *chain
//! id* (the digest of the layer stack up to it), so the mount options name the image's
//! layers exactly. On top of the root come the other mounts: volumes and binds, tmpfs,
//! `/proc`, `/sys`, `/dev`, the /etc files berth writes, and the masks that hide parts of
//! `/proc` and `/sys`. All of it is read from the process's own `/proc/<pid>/mountinfo`.

use super::{read_proc, ExplainError};
use crate::record::ContainerRecord;
use crate::Engine;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemFacts {
    /// Whether the rootfs is mounted now (a stopped container's is not).
    pub mounted: bool,
    pub overlay: OverlayFacts,
    /// Every other mount in the container's mount namespace, in mount order.
    pub mounts: Vec<MountFacts>,
    /// Mount points that are read-only.
    pub read_only: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OverlayFacts {
    /// The `mountinfo` line's mount id (0 when not mounted).
    pub mount_id: u32,
    /// Read-only image layers, top first (overlay's order).
    pub lower: Vec<LayerFacts>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The full superblock options as the kernel shows them.
    pub options: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LayerFacts {
    pub dir: PathBuf,
    /// Digest of the layer stack up to this layer (the snapshot's key); empty when the
    /// directory is not one of the image's snapshots.
    pub chain_id: String,
    /// Digest of the layer's uncompressed tar.
    pub diff_id: String,
    /// The compressed blob it came from, when known.
    pub blob: String,
    /// Bytes of file content.
    pub size: u64,
    /// `layer` (one of the image's), `init` (the image's shared init layer of mount points,
    /// `chain_id` then names the image's top layer) or empty (unknown directory).
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountFacts {
    pub mount_id: u32,
    /// Where it is mounted inside the container.
    pub target: String,
    pub fstype: String,
    /// The device/source field (`proc`, `tmpfs`, `/dev/vda`, `overlay`).
    pub source: String,
    /// For bind mounts: the path within the source filesystem (mountinfo's `root`).
    pub root: String,
    /// Per-mount options (`ro,nosuid,...`).
    pub options: String,
    pub read_only: bool,
    /// What berth put it there for: `volume`, `bind`, `tmpfs`, `etc file`, `masked`,
    /// `read-only path`, `system` (proc, sys, dev, cgroup), `rootfs`.
    pub purpose: String,
}

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    pub root: String,
    pub target: String,
    pub options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Parse mountinfo (see proc(5)); octal escapes (`\040`) are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.splitn(3, ' ').collect();
            if f.len() < 6 || g.len() < 3 {
                return None;
            }
            Some(MountInfo {
                id: f[0].parse().ok()?,
                parent: f[1].parse().ok()?,
                root: unescape(f[3]),
                target: unescape(f[4]),
                options: f[5].to_string(),
                fstype: g[0].to_string(),
                source: unescape(g[1]),
                super_options: g[2].to_string(),
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Overlay's lowerdirs from its superblock options, top first: `lowerdir=a:b` (`\:` is a
/// literal colon) or one `lowerdir+=` per layer.
pub fn overlay_dirs(super_options: &str) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let (mut lower, mut upper, mut work) = (Vec::new(), PathBuf::new(), PathBuf::new());
    for opt in split_options(super_options) {
        if let Some(v) = opt.strip_prefix("lowerdir=") {
            let mut cur = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => cur.extend(chars.next()),
                    ':' => lower.push(PathBuf::from(std::mem::take(&mut cur))),
                    c => cur.push(c),
                }
            }
            if !cur.is_empty() {
                lower.push(PathBuf::from(cur));
            }
        } else if let Some(v) = opt.strip_prefix("lowerdir+=") {
            lower.push(PathBuf::from(v));
        } else if let Some(v) = opt.strip_prefix("upperdir=") {
            upper = PathBuf::from(v);
        } else if let Some(v) = opt.strip_prefix("workdir=") {
            work = PathBuf::from(v);
        }
    }
    (lower, upper, work)
}

/// Comma-separated options, where `\,` is a literal comma.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                cur.extend(chars.next());
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Map overlay lowerdirs to the image's layers by their snapshot directory.
fn layers_of(engine: &Engine, rec: &ContainerRecord, dirs: &[PathBuf]) -> Vec<LayerFacts> {
    let image = engine.inner.images.get(&rec.image_id).ok();
    let snaps = engine.inner.images.snapshots();
    dirs.iter()
        .map(|d| {
            let layer = image
                .as_ref()
                .and_then(|img| img.layers.iter().find(|l| snaps.fs_dir(&l.chain_id) == *d));
            // The init layer sits in the top layer's snapshot dir, beside its `fs`.
            let init_of = image.as_ref().and_then(|img| {
                let top = img.layers.last()?;
                let is_init = d.parent() == snaps.fs_dir(&top.chain_id).parent()
                    && d.file_name()?.to_str()?.starts_with("init-");
                is_init.then_some(top)
            });
            match (layer, init_of) {
                (Some(l), _) => LayerFacts {
                    dir: d.clone(),
                    chain_id: l.chain_id.to_string(),
                    diff_id: l.diff_id.to_string(),
                    blob: l.blob.as_ref().map(|b| b.to_string()).unwrap_or_default(),
                    size: l.size,
                    kind: "layer".into(),
                },
                (None, Some(top)) => LayerFacts {
                    dir: d.clone(),
                    chain_id: top.chain_id.to_string(),
                    kind: "init".into(),
                    ..Default::default()
                },
                (None, None) => LayerFacts {
                    dir: d.clone(),
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// A stopped container: the stored layer stack, upper and work dirs (not mounted).
pub(crate) fn stored(engine: &Engine, rec: &ContainerRecord) -> FilesystemFacts {
    let Ok(m) = crate::start::rootfs_mount_of(rec) else {
        return FilesystemFacts::default();
    };
    FilesystemFacts {
        mounted: false,
        overlay: OverlayFacts {
            lower: layers_of(engine, rec, &m.lowerdirs),
            upper: m.upper,
            work: m.work,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn collect(
    engine: &Engine,
    rec: &ContainerRecord,
    spec: Option<&serde_json::Value>,
) -> Result<FilesystemFacts, ExplainError> {
    let info = parse_mountinfo(&read_proc(rec.state.pid, "mountinfo")?);
    let list = |key: &str| -> Vec<String> {
        spec.and_then(|s| s["linux"][key].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (masked, ro_paths) = (list("maskedPaths"), list("readonlyPaths"));
    let tmpfs: Vec<String> = rec.config.host.tmpfs.keys().cloned().collect();
    let mut fs = FilesystemFacts {
        mounted: true,
        ..Default::default()
    };
    for m in &info {
        let read_only = m.options.split(',').any(|o| o == "ro");
        if m.target == "/" && m.fstype == "overlay" {
            let (lower, upper, work) = overlay_dirs(&m.super_options);
            fs.overlay = OverlayFacts {
                mount_id: m.id,
                lower: layers_of(engine, rec, &lower),
                upper,
                work,
                options: m.super_options.clone(),
            };
            if read_only {
                fs.read_only.push("/".into());
            }
            continue;
        }
        let purpose = purpose(rec, m, &masked, &ro_paths, &tmpfs);
        if read_only {
            fs.read_only.push(m.target.clone());
        }
        fs.mounts.push(MountFacts {
            mount_id: m.id,
            target: m.target.clone(),
            fstype: m.fstype.clone(),
            source: m.source.clone(),
            root: m.root.clone(),
            options: m.options.clone(),
            read_only,
            purpose,
        });
    }
    Ok(fs)
}

fn purpose(
    rec: &ContainerRecord,
    m: &MountInfo,
    masked: &[String],
    ro_paths: &[String],
    tmpfs: &[String],
) -> String {
    if let Some(mp) = rec.mounts.iter().find(|mp| mp.destination == m.target) {
        return mp.kind.clone();
    }
    if ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].contains(&m.target.as_str()) {
        return "etc file".into();
    }
    if masked.contains(&m.target) {
        return "masked".into();
    }
    if ro_paths.contains(&m.target) {
        return "read-only path".into();
    }
    if tmpfs.contains(&m.target)
        || rec
            .config
            .host
            .mounts
            .iter()
            .any(|x| x.kind == "tmpfs" && x.target == m.target)
    {
        return "tmpfs".into();
    }
    "system".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "70 46 0:39 / / rw,relatime - overlay overlay rw,lowerdir=/s/aa/fs:/s/b\\:b/fs,upperdir=/c/upper,workdir=/c/work,uuid=on\n\
90 70 254:0 /data/volumes/v/_data /data rw,relatime - ext4 /dev/vda rw\n\
53 71 0:43 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n\
52 71 0:48 / /proc/my\\040acpi ro,relatime - tmpfs tmpfs ro\n";

    #[test]
    fn mountinfo_lines() {
        let m = parse_mountinfo(MI);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].root, "/data/volumes/v/_data");
        assert_eq!(m[1].target, "/data");
        assert_eq!(m[3].target, "/proc/my acpi");
        assert_eq!(m[2].source, "tmpfs");
        let (l, u, w) = overlay_dirs(&m[0].super_options);
        assert_eq!(
            l,
            vec![PathBuf::from("/s/aa/fs"), PathBuf::from("/s/b:b/fs")]
        );
        assert_eq!(u, PathBuf::from("/c/upper"));
        assert_eq!(w, PathBuf::from("/c/work"));
    }

    #[test]
    fn lowerdir_plus() {
        let (l, _, _) = overlay_dirs("rw,lowerdir+=/a,lowerdir+=/b,upperdir=/u,workdir=/w");
        assert_eq!(l, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }
}
