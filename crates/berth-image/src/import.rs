//! `docker import`: a rootfs tarball (any compression) becomes a one-layer image.

use std::io::Read;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::error::ImageError;
use crate::manifest::Platform;
use crate::reference::ImageRef;
use crate::store::{ImageRecord, ImageStore, Layer};

impl ImageStore {
    /// Imports a rootfs tarball as a single-layer image, tagged `tag` when given, with
    /// `defaults` (`--change`) as its container config.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        tag: Option<&ImageRef>,
        defaults: ContainerConfig,
    ) -> Result<ImageRecord, ImageError> {
        let (chain, stats) = self.snapshots.apply_layer(None, &mut &mut *tar, None)?;
        let host = Platform::host();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let config = ImageConfig {
            architecture: host.architecture,
            os: host.os,
            variant: host.variant,
            created: Some(now.clone()),
            config: defaults,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![stats.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                created_by: None,
                comment: Some("Imported from tarball".into()),
                empty_layer: None,
            }],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&config).expect("config serialises");
        let id = self.write_blob(&bytes, None)?;
        let layer = Layer {
            diff_id: stats.diff_id,
            chain_id: chain,
            size: stats.size,
            blob: None,
            media_type: None,
        };
        let tagged = match tag {
            Some(t) if t.digest.is_some() => {
                return Err(ImageError::Invalid(format!(
                    "cannot import as {t}: give a tag, not a digest"
                )))
            }
            Some(t) => t.tagged(),
            None => None,
        };
        self.commit_image(&id, vec![layer], None, tagged, None)?;
        self.get(&id.to_string())
    }
}
