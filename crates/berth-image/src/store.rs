//! The image store under `<data_root>/image/`:
//!
//! ```text
//! blobs/sha256/<hex>        content by digest (manifests, indexes, configs, layer blobs)
//! ingest/<hex>.partial      downloads in progress, kept for Range resume
//! images/<id-hex>.json      one record per image (layers, manifest digest, size)
//! repositories.json         name:tag → image ID, name@digest → image ID
//! snapshots/<chain-hex>/fs  unpacked layers (see snapshot.rs)
//! containers/<id>/          container upper/work dirs
//! ```
//! Every file is written temp + fsync + rename; blobs are verified before the rename.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{io_err, ImageError};
use crate::fsutil;
use crate::init_layer::MountPoint;
use crate::reference::ImageRef;
use crate::registry::{RegistryClient, RegistryConfig};
use crate::snapshot::{RootfsMount, Snapshots};

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub diff_id: DiffId,
    pub chain_id: ChainId,
    /// Bytes of file content.
    pub size: u64,
    /// The blob it came from (compressed digest), when the store keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// What is persisted per image (`images/<id-hex>.json`); the config lives in `blobs/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredImage {
    id: ImageId,
    layers: Vec<Layer>,
    #[serde(default)]
    manifest: Option<Digest>,
    #[serde(default)]
    manifest_media_type: Option<String>,
}

/// An image as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// Digest of the config blob.
    pub id: ImageId,
    /// Familiar `name:tag` forms (`busybox:latest`, `127.0.0.1:5000/x:v1`).
    pub repo_tags: Vec<String>,
    /// Familiar `name@digest` forms.
    pub repo_digests: Vec<String>,
    /// `created` from the config (RFC 3339).
    pub created: Option<String>,
    /// Sum of the layers' sizes.
    pub size: u64,
    pub config: ImageConfig,
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    /// Digest of the image manifest (not the list) it was pulled with.
    pub manifest: Option<Digest>,
}

impl ImageRecord {
    /// Chain IDs bottom first (what `prepare_container_rootfs` takes).
    pub fn chain_ids(&self) -> Vec<ChainId> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }
}

/// What `remove` did, in Docker's `DELETE /images` reply shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(ImageId),
}

/// What `gc` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    pub blobs: usize,
    pub snapshots: usize,
    pub bytes: u64,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Repositories {
    /// `docker.io/library/busybox:latest` → id
    tags: BTreeMap<String, ImageId>,
    /// `docker.io/library/busybox@sha256:…` → id
    digests: BTreeMap<String, ImageId>,
}

/// The image store. Share it as `Arc<ImageStore>`; every method takes `&self`.
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) registry: RegistryClient,
    pub(crate) snapshots: Snapshots,
    repos: Mutex<Repositories>,
    blob_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls, loads and imports in progress: they commit snapshots and blobs before the
    /// image record that references them, so GC must not run meanwhile.
    writers: AtomicUsize,
}

/// Marks a writer (pull, load, import) in progress while alive.
pub(crate) struct WriterGuard<'a>(&'a AtomicUsize);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ImageStore {
    /// Opens (creating) the store under `<data_root>/image`.
    pub fn open(data_root: &Path, registry: RegistryConfig) -> Result<Self, ImageError> {
        let root = data_root.join("image");
        for d in ["blobs/sha256", "ingest", "images"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        let snapshots = Snapshots::open(&root)?;
        let rp = root.join("repositories.json");
        let repos = match std::fs::read(&rp) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                ImageError::Invalid(format!(
                    "{} is corrupt ({e}); restore or remove it",
                    rp.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Repositories::default(),
            Err(e) => return Err(io_err("read", &rp)(e)),
        };
        Ok(ImageStore {
            registry: RegistryClient::new(registry)?,
            root,
            snapshots,
            repos: Mutex::new(repos),
            blob_locks: Mutex::new(HashMap::new()),
            writers: AtomicUsize::new(0),
        })
    }

    /// `<data_root>/image`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn ingest_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("ingest")
            .join(format!("{}.partial", d.hex()))
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Reads a stored blob.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ImageError::NotFound(d.to_string())
            } else {
                io_err("read", &p)(e)
            }
        })
    }

    /// Stores `data` under its digest (verified against `expected` when given).
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, ImageError> {
        let d = Digest::of(data);
        if let Some(e) = expected {
            if *e != d {
                return Err(ImageError::DigestMismatch {
                    what: "blob".into(),
                    expected: e.clone(),
                    actual: d,
                });
            }
        }
        let p = self.blob_path(&d);
        if !p.exists() {
            fsutil::write_atomic(&p, data, 0o644).map_err(io_err("write", &p))?;
        }
        Ok(d)
    }

    pub(crate) fn writer(&self) -> WriterGuard<'_> {
        self.writers.fetch_add(1, Ordering::SeqCst);
        WriterGuard(&self.writers)
    }

    /// One async lock per blob digest, so concurrent pulls of one layer do not share a partial file.
    pub(crate) fn blob_lock(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.blob_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(d.clone())
            .or_default()
            .clone()
    }

    fn save_repos(&self, r: &Repositories) -> Result<(), ImageError> {
        let p = self.root.join("repositories.json");
        let json = serde_json::to_vec_pretty(r).expect("repositories serialise");
        fsutil::write_atomic(&p, &json, 0o644).map_err(io_err("write", &p))
    }

    fn image_path(&self, id: &ImageId) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// Writes an image record and points `tag` (and `digest_name`) at it.
    pub(crate) fn commit_image(
        &self,
        id: &ImageId,
        layers: Vec<Layer>,
        manifest: Option<(Digest, String)>,
        tag: Option<String>,
        digest_name: Option<String>,
    ) -> Result<Option<ImageId>, ImageError> {
        let stored = StoredImage {
            id: id.clone(),
            layers,
            manifest: manifest.as_ref().map(|m| m.0.clone()),
            manifest_media_type: manifest.map(|m| m.1),
        };
        let p = self.image_path(id);
        fsutil::write_atomic(
            &p,
            &serde_json::to_vec_pretty(&stored).expect("record serialises"),
            0o644,
        )
        .map_err(io_err("write", &p))?;
        let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        let mut previous = None;
        if let Some(t) = tag {
            previous = repos.tags.insert(t, id.clone());
        }
        if let Some(d) = digest_name {
            repos.digests.insert(d, id.clone());
        }
        self.save_repos(&repos)?;
        Ok(previous)
    }

    /// Records `name@digest` (a pushed or pulled manifest) for an image.
    pub(crate) fn add_repo_digest(&self, key: String, id: &ImageId) -> Result<(), ImageError> {
        let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        repos.digests.insert(key, id.clone());
        self.save_repos(&repos)
    }

    /// The image a full `name:tag` points to.
    pub(crate) fn tag_target(&self, full_tag: &str) -> Option<ImageId> {
        self.repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tags
            .get(full_tag)
            .cloned()
    }

    fn load_record(&self, id: &ImageId) -> Result<ImageRecord, ImageError> {
        let p = self.image_path(id);
        let b = std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ImageError::NotFound(id.to_string())
            } else {
                io_err("read", &p)(e)
            }
        })?;
        let s: StoredImage = serde_json::from_slice(&b).map_err(|e| {
            ImageError::Invalid(format!("image record {} is corrupt: {e}", p.display()))
        })?;
        let config = ImageConfig::from_json(&self.read_blob(id)?)?;
        let repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        let repo_tags = repos
            .tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| familiar_key(k))
            .collect();
        let repo_digests = repos
            .digests
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| familiar_key(k))
            .collect();
        Ok(ImageRecord {
            id: s.id,
            repo_tags,
            repo_digests,
            created: config.created.clone(),
            size: s.layers.iter().map(|l| l.size).sum(),
            config,
            layers: s.layers,
            manifest: s.manifest,
        })
    }

    fn all_ids(&self) -> Vec<ImageId> {
        let Ok(rd) = std::fs::read_dir(self.root.join("images")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                Digest::parse(&format!("sha256:{}", n.strip_suffix(".json")?)).ok()
            })
            .collect()
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut v: Vec<ImageRecord> = self
            .all_ids()
            .iter()
            .filter_map(|id| self.load_record(id).ok())
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Finds an image by reference (`busybox`, `x:v1`, `x@sha256:…`), full ID, or ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<ImageRecord, ImageError> {
        self.resolve(name_or_id)
            .and_then(|id| self.load_record(&id))
    }

    fn resolve(&self, name_or_id: &str) -> Result<ImageId, ImageError> {
        let not_found = || ImageError::NotFound(name_or_id.to_string());
        if let Ok(d) = Digest::parse(name_or_id) {
            return if self.image_path(&d).exists() {
                Ok(d)
            } else {
                Err(not_found())
            };
        }
        if let Ok(r) = ImageRef::parse(name_or_id) {
            let repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
            let hit = match &r.digest {
                Some(d) => repos.digests.get(&format!("{}@{d}", r.name())).cloned(),
                None => r.tagged().and_then(|t| repos.tags.get(&t).cloned()),
            };
            if let Some(id) = hit {
                return Ok(id);
            }
        }
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<ImageId> = self
                .all_ids()
                .into_iter()
                .filter(|id| id.hex().starts_with(hex))
                .collect();
            return match hits.len() {
                1 => Ok(hits[0].clone()),
                0 => Err(not_found()),
                _ => Err(ImageError::Invalid(format!(
                    "image ID prefix {name_or_id} is ambiguous; give more digits"
                ))),
            };
        }
        Err(not_found())
    }

    /// Points `target` at the image `source` names (`docker tag`).
    pub fn tag(&self, source: &str, target: &ImageRef) -> Result<(), ImageError> {
        let id = self.resolve(source)?;
        let t = target.tagged().ok_or_else(|| {
            ImageError::Invalid(format!(
                "cannot tag with a digest reference {target}; give a tag"
            ))
        })?;
        if target.digest.is_some() {
            return Err(ImageError::Invalid(format!(
                "cannot tag with a digest reference {target}; give a tag"
            )));
        }
        let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        repos.tags.insert(t, id);
        self.save_repos(&repos)
    }

    /// `docker rmi`: untags a tag; deletes the image when no tag is left (or when asked by
    /// ID). Refused while `in_use(id)` or (by ID) while several tags point at it, unless
    /// `force`. A deleted image's blobs and snapshots nothing else uses are removed at once
    /// (a collection, see [`ImageStore::gc`]).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&ImageId) -> bool,
    ) -> Result<Vec<RemoveEvent>, ImageError> {
        let id = self.resolve(name)?;
        let by_ref = ImageRef::parse(name).ok();
        let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        let tags: Vec<String> = repos
            .tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect();
        let mut events = Vec::new();
        let named = by_ref.as_ref().and_then(|r| {
            let key = match &r.digest {
                Some(d) => format!("{}@{d}", r.name()),
                None => r.tagged()?,
            };
            (repos.tags.contains_key(&key) || repos.digests.contains_key(&key)).then_some(key)
        });
        if let Some(key) = &named {
            if tags.len() > 1 && repos.tags.contains_key(key) {
                repos.tags.remove(key);
                self.save_repos(&repos)?;
                return Ok(vec![RemoveEvent::Untagged(familiar_key(key))]);
            }
        } else if tags.len() > 1 && !force {
            return Err(ImageError::Conflict(format!(
                "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        if in_use(&id) && !force {
            return Err(ImageError::Conflict(format!(
                "unable to remove {name} (must force) - image {} is being used by a container; remove the container first",
                id.short()
            )));
        }
        for t in tags {
            repos.tags.remove(&t);
            events.push(RemoveEvent::Untagged(familiar_key(&t)));
        }
        let digests: Vec<String> = repos
            .digests
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect();
        for d in digests {
            repos.digests.remove(&d);
            events.push(RemoveEvent::Untagged(familiar_key(&d)));
        }
        self.save_repos(&repos)?;
        drop(repos);
        let p = self.image_path(&id);
        std::fs::remove_file(&p).map_err(io_err("remove", &p))?;
        events.push(RemoveEvent::Deleted(id));
        // like docker rmi, give the space back now (layers still used elsewhere stay)
        if let Err(e) = self.gc() {
            tracing::warn!("image gc after removal failed: {e}");
        }
        Ok(events)
    }

    /// Removes blobs and snapshots no image and no container rootfs references, plus stale
    /// partial downloads older than a day.
    pub fn gc(&self) -> Result<GcStats, ImageError> {
        if self.writers.load(Ordering::SeqCst) > 0 {
            tracing::info!("image gc skipped: a pull, load or import is in progress");
            return Ok(GcStats::default());
        }
        let mut keep_blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut keep_chains: BTreeSet<ChainId> =
            self.snapshots.container_layers().into_iter().collect();
        for id in self.all_ids() {
            let p = self.image_path(&id);
            let Ok(b) = std::fs::read(&p) else { continue };
            let Ok(s) = serde_json::from_slice::<StoredImage>(&b) else {
                continue;
            };
            keep_blobs.insert(id);
            keep_blobs.extend(s.manifest);
            for l in s.layers {
                keep_chains.insert(l.chain_id);
                keep_blobs.extend(l.blob);
            }
        }
        {
            let repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
            for k in repos.digests.keys() {
                if let Some(d) = k.rsplit_once('@').and_then(|(_, d)| Digest::parse(d).ok()) {
                    keep_blobs.insert(d);
                }
            }
        }
        // manifests referenced by kept indexes
        for d in keep_blobs.clone() {
            if let Ok(b) = self.read_blob(&d) {
                if let Ok(crate::manifest::AnyManifest::Index(ix)) =
                    crate::manifest::AnyManifest::parse(None, &b)
                {
                    keep_blobs.extend(ix.manifests.into_iter().map(|m| m.digest));
                }
            }
        }
        let mut st = GcStats::default();
        let bdir = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(&bdir)
            .map_err(io_err("read", &bdir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            let keep =
                Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| keep_blobs.contains(&d));
            if !keep {
                st.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
                st.blobs += 1;
            }
        }
        for c in self.snapshots.list() {
            if !keep_chains.contains(&c) {
                st.bytes += self.snapshots.size(&c).unwrap_or(0);
                self.snapshots.remove(&c)?;
                st.snapshots += 1;
            }
        }
        let idir = self.root.join("ingest");
        if let Ok(rd) = std::fs::read_dir(&idir) {
            for e in rd.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| a.as_secs() > 86_400);
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(st)
    }

    /// Creates a container's upper/work dirs over the image's layers.
    pub fn prepare_container_rootfs(
        &self,
        container_id: &str,
        image: &ImageRecord,
    ) -> Result<RootfsMount, ImageError> {
        self.prepare_container_rootfs_with(container_id, image, true, &[])
    }

    /// [`ImageStore::prepare_container_rootfs`]; `durable: false` skips the fsyncs (for a
    /// container a crash removes anyway: `--rm`). `mount_points`: what every container
    /// mounts over, kept in the image's shared init layer ([`crate::init_layer`]).
    pub fn prepare_container_rootfs_with(
        &self,
        container_id: &str,
        image: &ImageRecord,
        durable: bool,
        mount_points: &[MountPoint],
    ) -> Result<RootfsMount, ImageError> {
        Ok(self.snapshots.prepare_container_rootfs_with(
            container_id,
            &image.chain_ids(),
            durable,
            mount_points,
        )?)
    }

    /// See [`crate::snapshot::Snapshots::repair_container_layers`].
    pub fn repair_container_layers(
        &self,
        container_id: &str,
        lowerdirs: &[PathBuf],
    ) -> Result<bool, ImageError> {
        Ok(self
            .snapshots
            .repair_container_layers(container_id, lowerdirs)?)
    }

    /// Deletes a container's upper/work dirs (unmount first).
    pub fn remove_container_rootfs(&self, container_id: &str) -> Result<(), ImageError> {
        Ok(self.snapshots.remove_container_rootfs(container_id)?)
    }
}

/// Familiar form of a stored `name:tag` or `name@digest` key.
fn familiar_key(key: &str) -> String {
    match ImageRef::parse(key) {
        Ok(r) => r.familiar(),
        Err(_) => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_waits_for_writers_and_removes_unreferenced_blobs() {
        let d = tempfile::tempdir().unwrap();
        let s = ImageStore::open(d.path(), RegistryConfig::default()).unwrap();
        let b = s.write_blob(b"orphan", None).unwrap();
        assert!(s.write_blob(b"x", Some(&b)).is_err());
        {
            let _w = s.writer();
            assert_eq!(s.gc().unwrap(), GcStats::default());
            assert!(s.has_blob(&b));
        }
        let st = s.gc().unwrap();
        assert_eq!((st.blobs, st.bytes), (1, 6));
        assert!(!s.has_blob(&b));
        assert!(matches!(s.get("nothing"), Err(ImageError::NotFound(_))));
        assert!(matches!(s.get("abcd"), Err(ImageError::NotFound(_))));
    }
}
