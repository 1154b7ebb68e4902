//! Pull: resolve the manifest (platform from an index), fetch the config, then download all
//! missing layers in parallel; each layer is hashed, kept as a partial file for resume,
//! decompressed and unpacked while it downloads (a synchronous tar pipeline in
//! `spawn_blocking`, fed through a channel). Digest and diff ID are both verified before the
//! blob and the snapshot get their real names.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;

use crate::config::ImageConfig;
use crate::digest::{chain_ids, ChainId, DiffId, Digest};
use crate::error::{io_err, ImageError};
use crate::manifest::{self, AnyManifest, Descriptor, Manifest, Platform};
use crate::progress::{LayerStatus, PullEvent};
use crate::reference::ImageRef;
use crate::registry::{Credentials, RegistryError, RepoAccess};
use crate::store::{ImageRecord, ImageStore, Layer};

/// Layers downloaded at once (dockerd's default `max-concurrent-downloads` is 3).
const CONCURRENT_LAYERS: usize = 3;
const LAYER_ATTEMPTS: u32 = 5;
const MAX_CONFIG_BYTES: usize = 8 << 20;

/// Options of a pull.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Platform to select from a manifest list; the host's when `None`.
    pub platform: Option<Platform>,
    /// Credentials (from `X-Registry-Auth`); else the credential file is consulted.
    pub credentials: Option<Credentials>,
}

/// The network side of a layer stream failed (the pull retries and resumes).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

impl ImageStore {
    /// Pulls `r` into the store and tags it; see the module docs.
    pub async fn pull(
        &self,
        r: &ImageRef,
        opts: &PullOptions,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<ImageRecord, ImageError> {
        let _writer = self.writer();
        let repo = RepoAccess {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            credentials: opts.credentials.clone(),
            actions: "pull",
        };
        let shown_tag = r.tag.clone().unwrap_or_else(|| r.manifest_reference());
        progress(PullEvent::PullingFrom {
            repository: r.familiar_name(),
            tag: shown_tag,
        });
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);

        // Up to date? A HEAD does not count against registry rate limits.
        if let Some(rec) = self.up_to_date(&repo, r, &platform).await {
            progress(PullEvent::Digest(rec.1));
            progress(PullEvent::Status(format!(
                "Image is up to date for {}",
                r.familiar()
            )));
            return Ok(rec.0);
        }

        let (top_digest, manifest, manifest_digest, manifest_media_type) =
            self.resolve_manifest(&repo, r, &platform).await?;

        // config
        let cfg_bytes = if self.has_blob(&manifest.config.digest) {
            self.read_blob(&manifest.config.digest)?
        } else {
            let b = self
                .registry
                .blob_bytes(&repo, &manifest.config.digest, MAX_CONFIG_BYTES)
                .await?;
            let actual = Digest::of(&b);
            if actual != manifest.config.digest {
                return Err(ImageError::DigestMismatch {
                    what: "config".into(),
                    expected: manifest.config.digest.clone(),
                    actual,
                });
            }
            b
        };
        let config = ImageConfig::from_json(&cfg_bytes)?;
        let runnable: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type != manifest::DOCKER_FOREIGN_LAYER)
            .collect();
        if let Some(bad) = runnable.iter().find(|l| {
            !l.media_type.is_empty()
                && !l.media_type.contains("tar")
                && !l.media_type.contains("rootfs.diff")
        }) {
            return Err(ImageError::Invalid(format!(
                "{} is not a container image: layer {} has media type {}",
                r.familiar(),
                bad.digest.short(),
                bad.media_type
            )));
        }
        if runnable.len() != config.rootfs.diff_ids.len() {
            return Err(ImageError::Invalid(format!(
                "image {} is inconsistent: the manifest has {} layers but the config lists {} diff IDs",
                r.familiar(),
                runnable.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let chains = chain_ids(&config.rootfs.diff_ids);

        for l in &runnable {
            progress(PullEvent::Layer {
                id: l.digest.short().into(),
                status: LayerStatus::PullingFsLayer,
            });
        }
        let missing: Vec<usize> = (0..runnable.len())
            .filter(|i| !self.snapshots.exists(&chains[*i]))
            .collect();
        for (n, i) in missing.iter().enumerate() {
            if n >= CONCURRENT_LAYERS {
                progress(PullEvent::Layer {
                    id: runnable[*i].digest.short().into(),
                    status: LayerStatus::Waiting,
                });
            }
        }
        for (i, l) in runnable.iter().enumerate() {
            if !missing.contains(&i) {
                progress(PullEvent::Layer {
                    id: l.digest.short().into(),
                    status: LayerStatus::AlreadyExists,
                });
            }
        }
        // futures built up front (not by a closure inside the stream), so the pull future
        // stays `Send` without higher-ranked closure bounds
        let jobs: Vec<_> = missing
            .iter()
            .map(|&i| {
                self.fetch_layer(
                    &repo,
                    runnable[i],
                    &config.rootfs.diff_ids[i],
                    &chains[i],
                    progress,
                )
            })
            .collect();
        let results: Vec<Result<(), ImageError>> = futures_util::stream::iter(jobs)
            .buffer_unordered(CONCURRENT_LAYERS)
            .collect()
            .await;
        for res in results {
            res?;
        }

        // record: config and manifest blobs, then the image, then its names
        let id = self.write_blob(&cfg_bytes, Some(&manifest.config.digest))?;
        let layers: Vec<Layer> = runnable
            .iter()
            .enumerate()
            .map(|(i, d)| Layer {
                diff_id: config.rootfs.diff_ids[i].clone(),
                chain_id: chains[i].clone(),
                size: self.snapshots.size(&chains[i]).unwrap_or(0),
                blob: Some(d.digest.clone()).filter(|b| self.has_blob(b)),
                media_type: Some(d.media_type.clone()).filter(|m| !m.is_empty()),
            })
            .collect();
        // `name:tag@digest` pulls the digest and keeps the tag as a name
        let tag = r.tagged();
        let previous = self.commit_image(
            &id,
            layers,
            Some((manifest_digest, manifest_media_type)),
            tag,
            Some(format!("{}@{top_digest}", r.name())),
        )?;
        progress(PullEvent::Digest(top_digest));
        let status = if previous.as_ref() == Some(&id) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        progress(PullEvent::Status(format!("{status} {}", r.familiar())));
        self.get(&id.to_string())
    }

    /// The local image when the tag still points at the same manifest (by `HEAD`), for the
    /// same platform, with all its layers present.
    async fn up_to_date(
        &self,
        repo: &RepoAccess,
        r: &ImageRef,
        platform: &Platform,
    ) -> Option<(ImageRecord, Digest)> {
        if r.digest.is_some() {
            return None;
        }
        let id = self.tag_target(&r.tagged()?)?;
        let rec = self.get(&id.to_string()).ok()?;
        let c = &rec.config;
        let same_platform = c.os == platform.os
            && c.architecture == platform.architecture
            && (platform.variant.is_none() || c.variant == platform.variant);
        if !same_platform
            || !rec
                .layers
                .iter()
                .all(|l| self.snapshots.exists(&l.chain_id))
        {
            return None;
        }
        let head = self
            .registry
            .manifest_digest(repo, &r.manifest_reference())
            .await
            .ok()
            .flatten()?;
        let known = format!("{}@{head}", r.familiar_name());
        rec.repo_digests.contains(&known).then_some((rec, head))
    }

    /// Fetches what `r` names; an index is resolved to `platform`'s manifest.
    /// Returns (digest the reference resolved to, manifest, its digest, its media type).
    async fn resolve_manifest(
        &self,
        repo: &RepoAccess,
        r: &ImageRef,
        platform: &Platform,
    ) -> Result<(Digest, Manifest, Digest, String), ImageError> {
        let reference = r.manifest_reference();
        let (bytes, ct, header) = self.registry.manifest(repo, &reference).await?;
        let top = Digest::of(&bytes);
        match (&r.digest, header) {
            (Some(want), _) if *want != top => {
                return Err(ImageError::DigestMismatch {
                    what: "manifest".into(),
                    expected: want.clone(),
                    actual: top,
                })
            }
            (None, Some(h)) if h != top => {
                return Err(ImageError::DigestMismatch {
                    what: "manifest".into(),
                    expected: h,
                    actual: top,
                })
            }
            _ => {}
        }
        let mut current = (bytes, ct, top.clone());
        for _depth in 0..4 {
            match AnyManifest::parse(current.1.as_deref(), &current.0)? {
                AnyManifest::Image(m) => {
                    self.write_blob(&current.0, Some(&current.2))?;
                    let mt = m
                        .media_type
                        .clone()
                        .or(current.1.clone())
                        .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
                    return Ok((top, *m, current.2, mt));
                }
                AnyManifest::Index(ix) => {
                    self.write_blob(&current.0, Some(&current.2))?;
                    let d = manifest::select_platform(&ix, platform)?.clone();
                    let (b, ct, _) = self.registry.manifest(repo, d.digest.as_str()).await?;
                    let actual = Digest::of(&b);
                    if actual != d.digest {
                        return Err(ImageError::DigestMismatch {
                            what: "manifest".into(),
                            expected: d.digest,
                            actual,
                        });
                    }
                    current = (
                        b,
                        ct.or(Some(d.media_type)).filter(|m| !m.is_empty()),
                        actual,
                    );
                }
            }
        }
        Err(manifest::ManifestError::TooDeep.into())
    }

    /// Downloads and unpacks one layer, retrying and resuming after network failures.
    async fn fetch_layer(
        &self,
        repo: &RepoAccess,
        desc: &Descriptor,
        diff_id: &DiffId,
        chain: &ChainId,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), ImageError> {
        let lock = self.blob_lock(&desc.digest);
        let _guard = lock.lock().await;
        let id = desc.digest.short().to_string();
        if self.snapshots.exists(chain) {
            progress(PullEvent::Layer {
                id,
                status: LayerStatus::AlreadyExists,
            });
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            match self.try_layer(repo, desc, diff_id, chain, progress).await {
                Ok(()) => return Ok(()),
                Err(ImageError::Interrupted { message, .. }) if attempt + 1 < LAYER_ATTEMPTS => {
                    tracing::info!(layer = %desc.digest, %message, attempt, "layer download interrupted; resuming");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_layer(
        &self,
        repo: &RepoAccess,
        desc: &Descriptor,
        diff_id: &DiffId,
        chain: &ChainId,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), ImageError> {
        let id = desc.digest.short().to_string();
        let want = u64::try_from(desc.size).map_err(|_| {
            ImageError::Invalid(format!("layer {} has a negative size", desc.digest))
        })?;
        let partial = self.ingest_path(&desc.digest);
        let blob = self.blob_path(&desc.digest);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(32);

        // A verified blob already here (its snapshot was removed): unpack it, no network.
        let (have, resp) = if blob.exists() {
            drop(tx);
            (None, None)
        } else {
            let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if have > want {
                let _ = std::fs::remove_file(&partial);
                have = 0;
            }
            let resp = match self.registry.blob(repo, &desc.digest, have).await {
                Ok(r) => r,
                Err(RegistryError::Connect { message, .. }) => {
                    return Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message,
                    })
                }
                Err(RegistryError::Status { status: 416, .. }) if have > 0 => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message: "registry refused the resume range".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if have > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                have = 0; // the registry ignored the Range: start over
            }
            (Some(have), Some((resp, tx)))
        };

        let snapshots = self.snapshots.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let failed2 = failed.clone();
        let (d, diff, ch) = (desc.digest.clone(), diff_id.clone(), chain.clone());
        let (partial2, blob2) = (partial.clone(), blob.clone());
        let worker = tokio::task::spawn_blocking(move || -> Result<u64, ImageError> {
            let mut src: Box<dyn Read> = match have {
                None => Box::new(File::open(&blob2).map_err(io_err("open", &blob2))?),
                Some(have) => {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .read(true)
                        .write(true)
                        .open(&partial2)
                        .map_err(io_err("open", &partial2))?;
                    f.set_len(have).map_err(io_err("truncate", &partial2))?;
                    // a separate handle: a cloned fd would share the append offset
                    let existing = File::open(&partial2)
                        .map_err(io_err("open", &partial2))?
                        .take(have);
                    f.seek(io::SeekFrom::End(0))
                        .map_err(io_err("seek", &partial2))?;
                    Box::new(ChannelReader {
                        existing: Some(existing),
                        rx,
                        cur: Bytes::new(),
                        append: Some(f),
                        failed: failed.clone(),
                    })
                }
            };
            let mut hashing = crate::unpack::HashingReader::new(&mut src);
            let pending = snapshots.begin()?;
            let stats = match crate::unpack::unpack_layer(&mut hashing, &pending.fs()) {
                Ok(s) => s,
                Err(e) => {
                    let interrupted = |m: String| ImageError::Interrupted {
                        digest: d.clone(),
                        message: m,
                    };
                    if failed2.load(Ordering::Relaxed) {
                        return Err(interrupted(e.to_string()));
                    }
                    // read the rest to tell a truncated or corrupt blob from a bad tar
                    if let Err(de) = hashing.drain() {
                        if failed2.load(Ordering::Relaxed) {
                            return Err(interrupted(de.to_string()));
                        }
                    }
                    let (actual, got, _) = hashing.finish();
                    if got < want {
                        // keep the partial: a later pull resumes from it
                        return Err(ImageError::Truncated {
                            digest: d,
                            got,
                            want,
                        });
                    }
                    if got == want && actual != d {
                        let _ = std::fs::remove_file(&partial2);
                        return Err(ImageError::DigestMismatch {
                            what: "layer".into(),
                            expected: d,
                            actual,
                        });
                    }
                    return Err(e.into());
                }
            };
            let (actual, got, _) = hashing.finish();
            drop(src);
            let fail = |e: ImageError| {
                let _ = std::fs::remove_file(&partial2);
                Err(e)
            };
            if got < want {
                return fail(ImageError::Truncated {
                    digest: d,
                    got,
                    want,
                });
            }
            if got > want {
                return fail(ImageError::Oversized { digest: d, want });
            }
            if actual != d {
                return fail(ImageError::DigestMismatch {
                    what: "layer".into(),
                    expected: d,
                    actual,
                });
            }
            if stats.diff_id != diff {
                return fail(ImageError::DigestMismatch {
                    what: "layer diff ID".into(),
                    expected: diff,
                    actual: stats.diff_id,
                });
            }
            if have.is_some() {
                // no fsync: every later read of a blob (unpack, save, push) re-verifies
                // its digest, so a blob torn by a crash is detected, not trusted
                std::fs::rename(&partial2, &blob2).map_err(io_err("rename", &blob2))?;
            }
            snapshots.commit(pending, &ch, stats.size)?;
            Ok(stats.size)
        });

        let mut net_error = None;
        let mut oversized = false;
        if let Some((mut resp, tx)) = resp {
            let mut current = have.unwrap_or(0);
            let mut last = 0u64;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        current += c.len() as u64;
                        if current > want {
                            // a registry streaming more than the descriptor says: stop
                            // before it fills the disk
                            oversized = true;
                            let _ = tx.send(Err("blob larger than its descriptor".into())).await;
                            break;
                        }
                        if tx.send(Ok(c)).await.is_err() {
                            break; // the unpacker stopped: its error tells why
                        }
                        if current - last >= 512 << 10 || current == want {
                            last = current;
                            progress(PullEvent::Layer {
                                id: id.clone(),
                                status: LayerStatus::Downloading {
                                    current,
                                    total: want,
                                },
                            });
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let m = crate::registry::error_chain(&e);
                        net_error = Some(m.clone());
                        let _ = tx.send(Err(m)).await;
                        break;
                    }
                }
            }
        }
        let res = worker
            .await
            .map_err(|e| ImageError::Invalid(format!("layer worker failed: {e}")))?;
        if oversized {
            let _ = std::fs::remove_file(&partial);
            return Err(ImageError::Oversized {
                digest: desc.digest.clone(),
                want,
            });
        }
        match res {
            Ok(size) => {
                progress(PullEvent::Layer {
                    id: id.clone(),
                    status: LayerStatus::VerifyingChecksum,
                });
                progress(PullEvent::Layer {
                    id: id.clone(),
                    status: LayerStatus::DownloadComplete,
                });
                progress(PullEvent::Layer {
                    id: id.clone(),
                    status: LayerStatus::Extracting {
                        current: size,
                        total: size,
                    },
                });
                progress(PullEvent::Layer {
                    id,
                    status: LayerStatus::PullComplete,
                });
                Ok(())
            }
            Err(e @ ImageError::Interrupted { .. }) => Err(e),
            Err(e) => match net_error {
                Some(message) if !matches!(e, ImageError::DigestMismatch { .. }) => {
                    Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message,
                    })
                }
                _ => Err(e),
            },
        }
    }
}

/// Bytes already in the partial file, then bytes from the network (each appended to the
/// partial file before the unpacker sees it, so an interrupted download resumes there).
struct ChannelReader {
    existing: Option<io::Take<File>>,
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
    append: Option<File>,
    /// Set when the network side failed (the error may reach the unpacker wrapped).
    failed: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &mut self.existing {
            let n = e.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.existing = None;
        }
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(m)) => {
                    self.failed.store(true, Ordering::Relaxed);
                    return Err(io::Error::other(StreamError(m)));
                }
                Some(Ok(b)) => {
                    if let Some(f) = &mut self.append {
                        f.write_all(&b)?;
                    }
                    self.cur = b;
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    /// The engine awaits pulls inside `Send` futures (axum handlers).
    #[allow(dead_code)]
    fn pull_future_is_send(s: &super::ImageStore, r: &super::ImageRef) {
        fn is_send<T: Send>(_: T) {}
        let sink = |_: super::PullEvent| {};
        is_send(s.pull(r, &super::PullOptions::default(), &sink));
    }
}
