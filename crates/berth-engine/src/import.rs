//! `docker import`: a rootfs tarball (uploaded, or fetched from an http(s) URL into a
//! temporary file under the data root with `Importing` progress) imported as a single-layer
//! image, with `--change` instructions applied to its config and `--message` as its history
//! comment.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::images::{ImageSummary, ProgressSender, PullProgress};
use crate::Engine;

/// What `POST /images/create?fromSrc=...` asks for besides the tarball.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the image with.
    pub reference: Option<String>,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// The history comment; Docker's `Imported from <source>` when empty.
    pub message: Option<String>,
}

/// Removes the download when the import is done (or failed).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends a progress message every 512 KiB (dockerd's progress reader step) and the last one.
struct Throttle {
    last_bytes: u64,
}

impl Throttle {
    fn due(&mut self, got: u64, total: Option<u64>) -> bool {
        if total == Some(got) || got == 0 || got - self.last_bytes >= 512 << 10 {
            self.last_bytes = got;
            return true;
        }
        false
    }
}

impl Engine {
    /// Import the tarball at `tar` with `opts`; `source` names it in the default comment
    /// (`-` for an upload, the URL otherwise).
    pub async fn image_import_with(
        &self,
        tar: &Path,
        opts: &ImportOptions,
        source: &str,
    ) -> Result<ImageSummary> {
        let tag = match opts.reference.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Some(
                berth_image::ImageRef::parse(r).map_err(|e| EngineError::invalid(e.to_string()))?,
            ),
            None => None,
        };
        let mut defaults = berth_image::ContainerConfig::default();
        berth_image::change::apply_changes(&mut defaults, &opts.changes)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let comment = opts
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("Imported from {source}"));
        let path = tar.to_path_buf();
        let store = self.image_store().clone();
        let rec = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::open(&path).map_err(|e| berth_image::ImageError::Io {
                op: "open",
                path: path.display().to_string(),
                source: e,
            })?;
            store.import_with(&mut f, tag.as_ref(), defaults, &comment)
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))?
        .map_err(crate::images::image_error)?;
        self.emit("image", "import", &rec.id.to_string(), BTreeMap::new());
        Ok(crate::images::summary_of(&rec, 0))
    }

    /// Fetch `src` (`http://…`, `https://…`, or `host/path`, read as http) and import it.
    /// Progress goes to `progress` (`Importing` with byte counts, then the image id, as
    /// dockerd streams it).
    pub async fn image_import_url(
        &self,
        src: &str,
        opts: &ImportOptions,
        progress: ProgressSender,
    ) -> Result<ImageSummary> {
        berth_image::import_url(src).map_err(|e| EngineError::invalid(e.to_string()))?;
        // Bad changes fail before the download.
        berth_image::change::apply_changes(&mut Default::default(), &opts.changes)
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let tmp = TempFile(
            self.inner
                .config
                .data_root
                .join(format!(".import-{:016x}", rand::random::<u64>())),
        );
        let mut throttle = Throttle { last_bytes: 0 };
        let p = progress.clone();
        berth_image::fetch_url(src, &tmp.0, move |got, total| {
            if throttle.due(got, total) {
                let _ = p.send(PullProgress {
                    id: None,
                    status: "Importing".into(),
                    current: Some(got),
                    total,
                });
            }
        })
        .await
        .map_err(|e| {
            if e.is_invalid() {
                EngineError::invalid(e.to_string())
            } else {
                EngineError::internal(e.to_string())
            }
        })?;
        let img = self.image_import_with(&tmp.0, opts, src).await?;
        let _ = progress.send(PullProgress {
            id: None,
            status: img.id.clone(),
            current: None,
            total: None,
        });
        Ok(img)
    }
}
