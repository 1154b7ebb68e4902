//! Pull: resolve the manifest (platform from an index), fetch the config, then download all
//! missing layers in parallel; each layer is hashed, kept as a partial file for resume,
//! decompressed and unpacked while it downloads (a synchronous tar pipeline in
//! `spawn_blocking`, fed through a channel). Digest and diff ID are both verified before the
//! blob and the snapshot get their real names.

use futures_util::StreamExt;

mod layer;

use crate::config::ImageConfig;
use crate::digest::{chain_ids, Digest};
use crate::error::ImageError;
use crate::manifest::{self, AnyManifest, Descriptor, Manifest, Platform};
use crate::progress::{LayerStatus, PullEvent};
use crate::reference::ImageRef;
use crate::registry::{Credentials, RepoAccess};
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
        // `Pulling from` only once the registry answered with a manifest (moby's order):
        // a refused login or an unknown image is then an error before any progress, which
        // the daemon answers as a plain HTTP error, as dockerd does.
        let pulling_from = || {
            progress(PullEvent::PullingFrom {
                repository: r.familiar_name(),
                tag: r.tag.clone().unwrap_or_else(|| r.manifest_reference()),
            })
        };
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);

        // Up to date? A HEAD does not count against registry rate limits.
        if let Some(rec) = self.up_to_date(&repo, r, &platform).await {
            pulling_from();
            progress(PullEvent::Digest(rec.1));
            progress(PullEvent::Status(format!(
                "Image is up to date for {}",
                r.familiar()
            )));
            return Ok(rec.0);
        }

        let (top_digest, manifest, manifest_digest, manifest_media_type) =
            self.resolve_manifest(&repo, r, &platform).await?;
        pulling_from();

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
