//! `history`: an image's build steps from its config's `history`, newest first, as dockerd
//! computes them (daemon/images/image_history.go): every entry that is not an
//! `empty_layer` takes the next layer (bottom first) and shows that layer's size; empty
//! ones (`CMD`, `ENV`, ...) show 0. Only the newest row names the image (its id and tags):
//! a pulled image has no parent images in the store, so the older rows are `<missing>`.

use berth_image::ImageRecord;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::Engine;

/// One row of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageHistoryEntry {
    /// The image id for the newest row, `<missing>` for the others.
    pub id: String,
    /// Unix seconds (0 when the config does not say).
    pub created: i64,
    pub created_by: String,
    /// The image's `name:tag`s, on the newest row only.
    pub tags: Vec<String>,
    /// Bytes of the layer this step made (0 for an empty layer).
    pub size: u64,
    pub comment: String,
}

/// The history rows of `r`, newest first.
pub fn history_of(r: &ImageRecord) -> Result<Vec<ImageHistoryEntry>> {
    let mut layers = r.layers.iter();
    let mut out = Vec::with_capacity(r.config.history.len());
    for h in &r.config.history {
        let size = if h.empty_layer.unwrap_or(false) {
            0
        } else {
            layers
                .next()
                .ok_or_else(|| {
                    EngineError::internal("too many non-empty layers in History section")
                })?
                .size
        };
        out.push(ImageHistoryEntry {
            id: "<missing>".into(),
            created: h
                .created
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp()),
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: Vec::new(),
            size,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = r.id.to_string();
        top.tags = r.repo_tags.clone();
    }
    Ok(out)
}

impl Engine {
    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryEntry>> {
        let store = self.inner.images.clone();
        let n = name.to_string();
        let rec = tokio::task::spawn_blocking(move || store.get(&n))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| match e.kind() {
                berth_image::ErrorKind::NotFound => EngineError::no_such_image(name),
                _ => crate::images::image_error(e),
            })?;
        history_of(&rec)
    }
}

#[cfg(test)]
mod tests {
    use berth_image::config::{History, ImageConfig};
    use berth_image::ImageRecord;

    use super::*;

    fn layer(n: u8, size: u64) -> berth_image::Layer {
        let d = berth_image::Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32)))
            .expect("digest");
        berth_image::Layer {
            diff_id: d.clone(),
            chain_id: d,
            size,
            blob: None,
            media_type: None,
        }
    }

    fn step(by: &str, empty: bool, created: &str) -> History {
        History {
            created: Some(created.into()),
            created_by: Some(by.into()),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty.then_some(true),
        }
    }

    #[test]
    fn newest_first_with_layer_sizes_and_the_id_on_top() {
        let config = ImageConfig {
            history: vec![
                step("ADD rootfs.tar /", false, "2024-01-01T00:00:00Z"),
                step("ENV A=1", true, "2024-01-02T00:00:00Z"),
                step("RUN make", false, "2024-01-03T00:00:00Z"),
                step("CMD [\"sh\"]", true, "2024-01-04T00:00:00Z"),
            ],
            ..Default::default()
        };
        let rec = ImageRecord {
            id: berth_image::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("id"),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: vec![],
            created: None,
            size: 0,
            config,
            layers: vec![layer(1, 4000), layer(2, 25)],
            manifest: None,
        };
        let h = history_of(&rec).unwrap();
        let rows: Vec<(&str, &str, u64)> = h
            .iter()
            .map(|e| (e.id.as_str(), e.created_by.as_str(), e.size))
            .collect();
        assert_eq!(
            rows,
            [
                (rec.id.to_string().as_str(), "CMD [\"sh\"]", 0),
                ("<missing>", "RUN make", 25),
                ("<missing>", "ENV A=1", 0),
                ("<missing>", "ADD rootfs.tar /", 4000),
            ]
        );
        assert_eq!(h[0].tags, ["busybox:latest"]);
        assert!(h[1].tags.is_empty());
        assert_eq!(h[3].created, 1_704_067_200);
        // More non-empty steps than layers: dockerd's error.
        let mut bad = rec.clone();
        bad.layers.pop();
        assert!(history_of(&bad)
            .unwrap_err()
            .message
            .contains("too many non-empty layers"));
    }
}
