//! `docker save` / `docker load`: image archives.
//!
//! `save` writes the format Docker 25+ writes, which every loader reads: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) plus Docker's `manifest.json` pointing at the
//! same blobs. Layers are the stored blobs (compressed as pulled), so digests survive a
//! save/load round trip. `load` reads that, the classic docker-archive (`<id>/layer.tar`,
//! `manifest.json`), and a plain OCI layout. Archives are untrusted: entries are extracted to a
//! temp directory with `..` refused and links kept as a lookup table (never created), and every
//! layer goes through the same safe unpacker as a pull, its diff ID checked against the config.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::digest::{chain_ids, Digest};
use crate::error::{io_err, ImageError};
use crate::fsutil;
use crate::manifest::{self, AnyManifest, Descriptor, Manifest, Platform};
use crate::reference::ImageRef;
use crate::store::{ImageRecord, ImageStore, Layer};
use crate::unpack::HashingReader;

/// One entry of Docker's `manifest.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::Invalid(format!("invalid image archive: {}", msg.into()))
}

impl ImageStore {
    /// The manifest bytes and media type to save or push for `rec`: the stored manifest when
    /// it and all its blobs are here, else an OCI manifest made from the layers.
    pub(crate) fn manifest_for(&self, rec: &ImageRecord) -> Result<(Vec<u8>, String), ImageError> {
        if let Some(d) = &rec.manifest {
            if let Ok(b) = self.read_blob(d) {
                if let Ok(AnyManifest::Image(m)) = AnyManifest::parse(None, &b) {
                    if Digest::of(&b) == *d && m.layers.iter().all(|l| self.has_blob(&l.digest)) {
                        let mt = m
                            .media_type
                            .clone()
                            .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
                        return Ok((b, mt));
                    }
                }
            }
        }
        let cfg = self.read_blob(&rec.id)?;
        let mut layers = Vec::new();
        for l in &rec.layers {
            let b = l.blob.as_ref().filter(|b| self.has_blob(b)).ok_or_else(|| {
                ImageError::Invalid(format!(
                    "layer {} of image {} has no stored blob (imported by an older berth); pull or import it again",
                    l.diff_id.short(),
                    rec.id.short()
                ))
            })?;
            let size = std::fs::metadata(self.blob_path(b))
                .map_err(io_err("stat", &self.blob_path(b)))?
                .len();
            layers.push(Descriptor {
                media_type: l
                    .media_type
                    .clone()
                    .unwrap_or_else(|| manifest::OCI_LAYER_GZIP.into()),
                digest: b.clone(),
                size: size as i64,
                urls: vec![],
                platform: None,
                annotations: None,
            });
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: manifest::OCI_CONFIG.into(),
                digest: rec.id.clone(),
                size: cfg.len() as i64,
                urls: vec![],
                platform: None,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        Ok((
            serde_json::to_vec(&m).expect("manifest serialises"),
            manifest::OCI_MANIFEST.into(),
        ))
    }

    /// Writes `names` (references or IDs) as one archive to `out` (`docker save`).
    pub fn save(&self, names: &[&str], out: &mut dyn Write) -> Result<(), ImageError> {
        let mut b = tar::Builder::new(out);
        let mut written: std::collections::HashSet<Digest> = Default::default();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        for name in names {
            let rec = self.get(name)?;
            let tag = ImageRef::parse(name)
                .ok()
                .filter(|r| r.digest.is_none() && rec.repo_tags.contains(&r.familiar()));
            let (mbytes, mt) = self.manifest_for(&rec)?;
            let m = match AnyManifest::parse(Some(&mt), &mbytes)? {
                AnyManifest::Image(m) => m,
                AnyManifest::Index(_) => return Err(bad("stored manifest is an index")),
            };
            let mdigest = Digest::of(&mbytes);
            let mut blobs: Vec<Digest> = m.layers.iter().map(|l| l.digest.clone()).collect();
            blobs.push(rec.id.clone());
            for d in &blobs {
                if written.insert(d.clone()) {
                    self.append_blob(&mut b, d)?;
                }
            }
            if written.insert(mdigest.clone()) {
                append_bytes(&mut b, &format!("blobs/sha256/{}", mdigest.hex()), &mbytes)?;
            }
            let mut ann = serde_json::Map::new();
            if let Some(t) = &tag {
                ann.insert("io.containerd.image.name".into(), t.to_string().into());
                ann.insert(
                    "org.opencontainers.image.ref.name".into(),
                    t.tag.clone().unwrap_or_default().into(),
                );
            }
            index.push(serde_json::json!({"mediaType": mt, "digest": mdigest, "size": mbytes.len(), "annotations": ann}));
            docker.push(ArchiveEntry {
                config: format!("blobs/sha256/{}", rec.id.hex()),
                repo_tags: Some(tag.iter().map(|t| t.familiar()).collect()),
                layers: m
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }
        append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let ix = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index});
        append_bytes(
            &mut b,
            "index.json",
            &serde_json::to_vec(&ix).expect("json"),
        )?;
        append_bytes(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&docker).expect("json"),
        )?;
        b.finish().map_err(|e| ImageError::Io {
            op: "write",
            path: "image archive".into(),
            source: e,
        })
    }

    /// Streams a blob into the archive, verifying its digest on the way.
    fn append_blob<W: Write>(&self, b: &mut tar::Builder<W>, d: &Digest) -> Result<(), ImageError> {
        let p = self.blob_path(d);
        let f = std::fs::File::open(&p).map_err(io_err("open", &p))?;
        let len = f.metadata().map_err(io_err("stat", &p))?.len();
        let mut h = header(len);
        let mut hr = HashingReader::new(f);
        b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut hr)
            .map_err(|e| ImageError::Io {
                op: "write",
                path: "image archive".into(),
                source: e,
            })?;
        let (actual, _, _) = hr.finish();
        if actual != *d {
            return Err(ImageError::DigestMismatch {
                what: "stored blob".into(),
                expected: d.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Loads every image of an archive (`docker load`); returns the loaded images.
    pub fn load(&self, input: &mut dyn Read) -> Result<Vec<ImageRecord>, ImageError> {
        let _writer = self.writer();
        let dir = TempDir(self.root.join("ingest").join(fsutil::temp_name("load-")));
        std::fs::create_dir_all(&dir.0).map_err(io_err("create", &dir.0))?;
        let links = extract(input, &dir.0)?;
        let open = |rel: &str| -> Result<std::fs::File, ImageError> {
            let p = resolve(&dir.0, &links, rel)?;
            std::fs::File::open(&p).map_err(|_| bad(format!("{rel} is missing")))
        };
        let read = |rel: &str| -> Result<Vec<u8>, ImageError> {
            let mut v = Vec::new();
            open(rel)?
                .take(64 << 20)
                .read_to_end(&mut v)
                .map_err(io_err("read", &dir.0))?;
            Ok(v)
        };
        let mut out = Vec::new();
        if dir.0.join("manifest.json").exists() {
            let entries: Vec<ArchiveEntry> = serde_json::from_slice(&read("manifest.json")?)
                .map_err(|e| bad(format!("manifest.json: {e}")))?;
            for e in entries {
                let cfg_bytes = read(&e.config)?;
                let config = ImageConfig::from_json(&cfg_bytes)?;
                if config.rootfs.diff_ids.len() != e.layers.len() {
                    return Err(bad(format!(
                        "{} lists {} layers but its config {}",
                        e.config,
                        e.layers.len(),
                        config.rootfs.diff_ids.len()
                    )));
                }
                let mut layers: Vec<Layer> = Vec::new();
                for (i, l) in e.layers.iter().enumerate() {
                    let parent = layers.last().map(|x| x.chain_id.clone());
                    layers.push(self.apply_and_keep(
                        parent.as_ref(),
                        &mut open(l)?,
                        Some(&config.rootfs.diff_ids[i]),
                    )?);
                }
                let id = self.write_blob(&cfg_bytes, None)?;
                let tags: Vec<ImageRef> = e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| ImageRef::parse(t).ok())
                    .collect();
                self.commit_image(
                    &id,
                    layers,
                    None,
                    tags.first().and_then(|t| t.tagged()),
                    None,
                )?;
                for t in tags.iter().skip(1) {
                    self.tag(&id.to_string(), t)?;
                }
                out.push(self.get(&id.to_string())?);
            }
        } else if dir.0.join("index.json").exists() {
            let ix = match AnyManifest::parse(None, &read("index.json")?)? {
                AnyManifest::Index(ix) => ix,
                AnyManifest::Image(_) => return Err(bad("index.json is not an index")),
            };
            for d in &ix.manifests {
                let ann = d.annotations.clone().unwrap_or_default();
                let name = ann
                    .get("io.containerd.image.name")
                    .or(ann
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains(':')))
                    .and_then(|n| ImageRef::parse(n).ok());
                let blob = |d: &Digest| -> Result<Vec<u8>, ImageError> {
                    let b = read(&format!("blobs/sha256/{}", d.hex()))?;
                    let actual = Digest::of(&b);
                    if actual != *d {
                        return Err(ImageError::DigestMismatch {
                            what: "archive blob".into(),
                            expected: d.clone(),
                            actual,
                        });
                    }
                    Ok(b)
                };
                let mut mbytes = blob(&d.digest)?;
                let mut m = AnyManifest::parse(Some(&d.media_type), &mbytes)?;
                for _ in 0..4 {
                    let AnyManifest::Index(inner) = &m else { break };
                    let pick = manifest::select_platform(inner, &Platform::host())?
                        .digest
                        .clone();
                    mbytes = blob(&pick)?;
                    m = AnyManifest::parse(None, &mbytes)?;
                }
                let AnyManifest::Image(m) = m else {
                    return Err(bad("index nests too deep"));
                };
                let cfg_bytes = blob(&m.config.digest)?;
                let config = ImageConfig::from_json(&cfg_bytes)?;
                if config.rootfs.diff_ids.len() != m.layers.len() {
                    return Err(bad("manifest and config disagree on the number of layers"));
                }
                let mut layers: Vec<Layer> = Vec::new();
                for (i, l) in m.layers.iter().enumerate() {
                    let parent = layers.last().map(|x| x.chain_id.clone());
                    let mut f = open(&format!("blobs/sha256/{}", l.digest.hex()))?;
                    let mut layer = self.apply_and_keep(
                        parent.as_ref(),
                        &mut f,
                        Some(&config.rootfs.diff_ids[i]),
                    )?;
                    if layer.blob.as_ref() != Some(&l.digest) {
                        return Err(ImageError::DigestMismatch {
                            what: "archive layer".into(),
                            expected: l.digest.clone(),
                            actual: layer.blob.unwrap_or(l.digest.clone()),
                        });
                    }
                    layer.media_type = Some(l.media_type.clone())
                        .filter(|m| !m.is_empty())
                        .or(layer.media_type);
                    layers.push(layer);
                }
                debug_assert_eq!(
                    layers
                        .iter()
                        .map(|l| l.chain_id.clone())
                        .collect::<Vec<_>>(),
                    chain_ids(&config.rootfs.diff_ids)
                );
                let id = self.write_blob(&cfg_bytes, None)?;
                let md = self.write_blob(&mbytes, None)?;
                let mt = m
                    .media_type
                    .clone()
                    .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
                self.commit_image(
                    &id,
                    layers,
                    Some((md, mt)),
                    name.as_ref().and_then(|n| n.tagged()),
                    None,
                )?;
                out.push(self.get(&id.to_string())?);
            }
        } else {
            return Err(bad("neither manifest.json nor index.json found"));
        }
        Ok(out)
    }
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ImageError> {
    let mut h = header(data.len() as u64);
    b.append_data(&mut h, path, data)
        .map_err(|e| ImageError::Io {
            op: "write",
            path: "image archive".into(),
            source: e,
        })
}

/// Removes the extraction directory however `load` ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Extracts regular files and directories of an untrusted archive under `dir`; links are
/// returned as `path → target` (archive-relative), never created.
fn extract(input: &mut dyn Read, dir: &Path) -> Result<HashMap<PathBuf, PathBuf>, ImageError> {
    let mut links = HashMap::new();
    let mut a = tar::Archive::new(input);
    let entries = a.entries().map_err(|e| bad(e.to_string()))?;
    for e in entries {
        let mut e = e.map_err(|e| bad(e.to_string()))?;
        let raw = e.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let rel: PathBuf = crate::unpack::clean(&raw)
            .ok_or_else(|| bad(format!("entry {} escapes the archive", raw.display())))?
            .iter()
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(dir.join(&rel)).map_err(io_err("create", dir))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let p = dir.join(&rel);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err("create", dir))?;
                }
                // create_new: an earlier entry cannot have planted anything here (no links exist)
                let _ = std::fs::remove_file(&p);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .map_err(io_err("create", &p))?;
                io::copy(&mut e, &mut f).map_err(|e| bad(e.to_string()))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .unwrap_or_default()
                    .into_owned();
                let base = if e.header().entry_type() == tar::EntryType::Symlink {
                    rel.parent().unwrap_or(Path::new("")).join(&target)
                } else {
                    target
                };
                let t: PathBuf = crate::unpack::clean(&base)
                    .ok_or_else(|| bad(format!("link {} escapes the archive", raw.display())))?
                    .iter()
                    .collect();
                links.insert(rel, t);
            }
            _ => {}
        }
    }
    Ok(links)
}

/// An archive path after following the link table (a few hops at most).
fn resolve(
    dir: &Path,
    links: &HashMap<PathBuf, PathBuf>,
    rel: &str,
) -> Result<PathBuf, ImageError> {
    let mut p: PathBuf = crate::unpack::clean(Path::new(rel))
        .ok_or_else(|| bad(format!("{rel} escapes the archive")))?
        .iter()
        .collect();
    for _ in 0..8 {
        match links.get(&p) {
            Some(t) => p = t.clone(),
            None => return Ok(dir.join(p)),
        }
    }
    Err(bad(format!("{rel}: too many links")))
}
