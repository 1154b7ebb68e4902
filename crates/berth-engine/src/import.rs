//! `docker import URL`: the tarball fetched over HTTP(S) into a temporary file under the data
//! root, with `Importing` progress, then imported like an uploaded one.

use crate::error::{EngineError, Result};
use crate::images::{ImageSummary, ProgressSender, PullProgress};
use crate::Engine;

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
        let done = total == Some(got);
        if done || got == 0 || got - self.last_bytes >= 512 << 10 {
            self.last_bytes = got;
            return true;
        }
        false
    }
}

impl Engine {
    /// Fetch `src` (`http://…`, `https://…`, or `host/path`, read as http) and import it as a
    /// single-layer image tagged `reference`. Progress goes to `progress` (`Importing` with
    /// byte counts, then the image id, as dockerd streams it).
    pub async fn image_import_url(
        &self,
        src: &str,
        reference: Option<&str>,
        progress: ProgressSender,
    ) -> Result<ImageSummary> {
        berth_image::import_url(src).map_err(|e| EngineError::invalid(e.to_string()))?;
        let path = self
            .inner
            .config
            .data_root
            .join(format!(".import-{:016x}", rand::random::<u64>()));
        let tmp = TempFile(path);
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
        let img = self.image_import(&tmp.0, reference).await?;
        let _ = progress.send(PullProgress {
            id: None,
            status: img.id.clone(),
            current: None,
            total: None,
        });
        Ok(img)
    }
}
