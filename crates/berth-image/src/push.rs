//! `docker push`: the layer blobs the store kept at pull/import/load time, the config, and
//! the manifest (the pulled one, byte for byte, so digests stay the same; else an OCI
//! manifest made from the layers). Blobs the registry already has are skipped.

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::{io_err, ImageError};
use crate::reference::ImageRef;
use crate::registry::{Credentials, RepoAccess};
use crate::store::ImageStore;
use crate::unpack::HashingReader;

/// Push progress, in the order Docker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushEvent {
    /// `The push refers to repository [127.0.0.1:5000/x]`
    Repository(String),
    Preparing {
        id: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    LayerExists {
        id: String,
    },
    /// `latest: digest: sha256:… size: 528`
    Done {
        tag: String,
        digest: Digest,
        size: usize,
    },
}

impl ImageStore {
    /// Pushes the local image `name` (a tagged reference) to its registry.
    pub async fn push(
        &self,
        name: &str,
        credentials: Option<Credentials>,
        progress: &(dyn Fn(PushEvent) + Send + Sync),
    ) -> Result<Digest, ImageError> {
        let r = ImageRef::parse(name)?;
        let tag = r
            .tag
            .clone()
            .ok_or_else(|| ImageError::Invalid(format!("push {name}: give a tag")))?;
        let rec = self.get(name)?;
        let repo = RepoAccess {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            credentials,
            actions: "pull,push",
        };
        progress(PushEvent::Repository(r.familiar_name()));
        let (mbytes, mt) = self.manifest_for(&rec)?;
        let m = match crate::manifest::AnyManifest::parse(Some(&mt), &mbytes)? {
            crate::manifest::AnyManifest::Image(m) => m,
            crate::manifest::AnyManifest::Index(_) => {
                return Err(ImageError::Invalid("stored manifest is an index".into()))
            }
        };
        for l in &m.layers {
            progress(PushEvent::Preparing {
                id: l.digest.short().into(),
            });
        }
        let mut blobs: Vec<Digest> = m.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(m.config.digest.clone());
        for d in &blobs {
            let id = d.short().to_string();
            if self.registry.blob_exists(&repo, d).await? {
                progress(PushEvent::LayerExists { id });
                continue;
            }
            // verify what is stored before sending it (blobs are not fsynced; see pull)
            let path = self.blob_path(d);
            let file = std::fs::File::open(&path).map_err(io_err("open", &path))?;
            let mut hr = HashingReader::new(file);
            hr.drain().map_err(io_err("read", &path))?;
            let (actual, total, _) = hr.finish();
            if actual != *d {
                return Err(ImageError::DigestMismatch {
                    what: "stored blob".into(),
                    expected: d.clone(),
                    actual,
                });
            }
            progress(PushEvent::Pushing {
                id: id.clone(),
                current: 0,
                total,
            });
            self.registry
                .upload_blob_file(&repo, d, &path, total)
                .await?;
            progress(PushEvent::Pushing {
                id: id.clone(),
                current: total,
                total,
            });
            progress(PushEvent::Pushed { id });
        }
        let size = mbytes.len();
        let digest = self
            .registry
            .put_manifest(&repo, &tag, &mt, Bytes::from(mbytes))
            .await?;
        self.add_repo_digest(format!("{}@{digest}", r.name()), &rec.id)?;
        progress(PushEvent::Done {
            tag,
            digest: digest.clone(),
            size,
        });
        Ok(digest)
    }
}
