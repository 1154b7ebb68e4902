//! Named volumes, local driver: `data_root/volumes/<name>/_data`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A volume to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSpec {
    /// Empty = a random 64-hex name (anonymous volume).
    pub name: String,
    /// Only `local` (or empty).
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A volume as inspect and list show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: Option<DateTime<Utc>>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Whether it was created for one container without a name.
    pub anonymous: bool,
}

use crate::error::{EngineError, Result};
use crate::options::{Filters, PruneReport};
use crate::Engine;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const META: &str = "meta.json";

impl Engine {
    fn volumes_root(&self) -> PathBuf {
        self.inner.config.data_root.join("volumes")
    }

    fn load_volume(&self, name: &str) -> Option<Volume> {
        if crate::oci::mounts::check_volume_name(name).is_err() {
            return None;
        }
        crate::store::read_json(&self.volumes_root().join(name).join(META)).ok()
    }

    /// The volume `name` (created when missing); an empty name makes an anonymous one.
    pub(crate) async fn ensure_volume(&self, name: &str, anonymous: bool) -> Result<Volume> {
        let _g = self.inner.volumes_lock.lock().await;
        if !name.is_empty() {
            if let Some(v) = self.load_volume(name) {
                return Ok(v);
            }
        }
        let name = if name.is_empty() {
            crate::names::new_id()
        } else {
            name.to_string()
        };
        self.create_volume_locked(
            VolumeSpec {
                name,
                ..Default::default()
            },
            anonymous,
        )
    }

    fn create_volume_locked(&self, spec: VolumeSpec, anonymous: bool) -> Result<Volume> {
        crate::oci::mounts::check_volume_name(&spec.name).map_err(EngineError::invalid)?;
        let dir = self.volumes_root().join(&spec.name);
        let data = dir.join("_data");
        std::fs::create_dir_all(&data)
            .map_err(|e| EngineError::io(format!("create volume {}", spec.name), e))?;
        let v = Volume {
            name: spec.name.clone(),
            driver: "local".into(),
            mountpoint: data.display().to_string(),
            created_at: Some(chrono::Utc::now()),
            labels: spec.labels,
            options: spec.driver_opts,
            scope: "local".into(),
            anonymous,
        };
        crate::store::write_json(&dir.join(META), &v)
            .map_err(|e| EngineError::io(format!("save volume {}", v.name), e))?;
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("driver".to_string(), "local".to_string());
        self.emit("volume", "create", &v.name, attrs);
        Ok(v)
    }

    pub(crate) fn volume_is_anonymous(&self, name: &str) -> bool {
        self.load_volume(name).map(|v| v.anonymous).unwrap_or(false)
    }

    /// Ids of containers that mount `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        self.all_containers()
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| {
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|r| r.id)
            .collect()
    }

    /// Create a volume (an existing one with the same name is returned as is).
    pub async fn volume_create(&self, spec: VolumeSpec) -> Result<Volume> {
        if !spec.driver.is_empty() && spec.driver != "local" {
            return Err(EngineError::not_found(format!(
                "error looking up volume plugin {}: plugin \"{}\" not found",
                spec.driver, spec.driver
            )));
        }
        if let Some(k) = spec.driver_opts.keys().next() {
            return Err(EngineError::invalid(format!(
                "invalid option {k:?} for the local volume driver; berth's local driver takes no options"
            )));
        }
        let _g = self.inner.volumes_lock.lock().await;
        let anonymous = spec.name.is_empty();
        let mut spec = spec;
        if anonymous {
            spec.name = crate::names::new_id();
        } else if let Some(v) = self.load_volume(&spec.name) {
            return Ok(v);
        }
        self.create_volume_locked(spec, anonymous)
    }

    /// Volumes (`name`, `label`, `dangling`, `driver` filters).
    pub async fn volume_list(&self, filters: Filters) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(self.volumes_root())
            .map_err(|e| EngineError::io("list volumes", e))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(v) = self.load_volume(&name) else {
                continue;
            };
            let mut keep = true;
            for (k, vals) in &filters {
                keep &= match k.as_str() {
                    "name" => vals.iter().any(|x| v.name.contains(x.as_str())),
                    "driver" => vals.iter().any(|x| x == &v.driver),
                    "label" => vals.iter().all(|x| match x.split_once('=') {
                        Some((k, val)) => v.labels.get(k).map(|y| y == val).unwrap_or(false),
                        None => v.labels.contains_key(x.as_str()),
                    }),
                    "dangling" => {
                        let dangling = self.volume_users(&v.name).is_empty();
                        vals.iter().any(|x| (x == "true" || x == "1") == dangling)
                    }
                    other => return Err(EngineError::invalid(format!("invalid filter '{other}'"))),
                };
            }
            if keep {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        self.load_volume(name)
            .ok_or_else(|| EngineError::no_such_volume(name))
    }

    /// Remove a volume; `Conflict` while a container uses it.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _g = self.inner.volumes_lock.lock().await;
        if self.load_volume(name).is_none() {
            if force {
                return Ok(());
            }
            return Err(EngineError::no_such_volume(name));
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        std::fs::remove_dir_all(self.volumes_root().join(name))
            .map_err(|e| EngineError::io(format!("remove volume {name}"), e))?;
        self.emit("volume", "destroy", name, Default::default());
        Ok(())
    }

    /// Remove unused volumes: anonymous ones, or all with the `all=true` filter (Docker ≥ 23).
    pub async fn volume_prune(&self, filters: Filters) -> Result<PruneReport> {
        let all = filters
            .get("all")
            .map(|v| v.iter().any(|x| x == "true" || x == "1"))
            .unwrap_or(false);
        let label_filters: Filters = filters
            .iter()
            .filter(|(k, _)| k.as_str() == "label")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut report = PruneReport::default();
        for v in self.volume_list(label_filters).await? {
            if (!all && !v.anonymous) || !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = dir_size(Path::new(&v.mountpoint));
            if self.volume_remove(&v.name, false).await.is_ok() {
                report.deleted.push(v.name);
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }

    /// Size and reference count of every volume (for `system df`).
    pub(crate) async fn volume_usage(&self) -> Result<Vec<(Volume, u64, u64)>> {
        let vols = self.volume_list(Filters::new()).await?;
        Ok(vols
            .into_iter()
            .map(|v| {
                let size = dir_size(Path::new(&v.mountpoint));
                let refs = self.volume_users(&v.name).len() as u64;
                (v, size, refs)
            })
            .collect())
    }
}

/// Bytes of regular files under `p` (symlinks not followed, other mounts not entered).
pub fn dir_size(p: &Path) -> u64 {
    let Ok(root) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let dev = root.dev();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() && m.dev() == dev {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// `rootfs` + `dest`, refusing any symlink on the way (an image could otherwise point the
/// copy at a host directory).
fn path_in_rootfs(rootfs: &Path, dest: &str) -> Option<PathBuf> {
    let mut p = rootfs.to_path_buf();
    for comp in dest.split('/').filter(|c| !c.is_empty()) {
        if comp == ".." {
            return None;
        }
        p.push(comp);
        let m = std::fs::symlink_metadata(&p).ok()?;
        if m.file_type().is_symlink() {
            return None;
        }
    }
    Some(p)
}

/// Fill an empty volume from the image's content at `dest` (Docker's copy-up on first use).
pub(crate) fn copy_up(rootfs: &Path, dest: &str, volume: &Path) {
    let empty = std::fs::read_dir(volume)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if !empty {
        return;
    }
    let Some(src) = path_in_rootfs(rootfs, dest) else {
        return;
    };
    if !src.is_dir() {
        return;
    }
    if let Err(e) = copy_tree(&src, volume) {
        tracing::warn!(
            "copy image content of {dest} into volume {}: {e}",
            volume.display()
        );
    }
}

/// Copy a directory tree preserving modes, owners and symlinks.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    let _ = std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()));
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            continue;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_up_fills_empty_volume_once_and_refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let rootfs = d.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::write(rootfs.join("data/sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("sub/f", rootfs.join("data/l")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("evil")).unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        copy_up(&rootfs, "/data", &vol);
        assert_eq!(std::fs::read(vol.join("sub/f")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(vol.join("l")).unwrap(),
            PathBuf::from("sub/f")
        );
        // Not empty any more: a second copy does nothing.
        std::fs::write(rootfs.join("data/new"), b"y").unwrap();
        copy_up(&rootfs, "/data", &vol);
        assert!(!vol.join("new").exists());
        // A symlink in the image must not lead the copy to the host.
        let vol2 = d.path().join("vol2");
        std::fs::create_dir(&vol2).unwrap();
        copy_up(&rootfs, "/evil", &vol2);
        assert!(std::fs::read_dir(&vol2).unwrap().next().is_none());
        assert_eq!(dir_size(&vol), 1);
    }
}
