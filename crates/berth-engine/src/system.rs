//! System-wide views: disk usage and counts.

use crate::images::ImageSummary;
use crate::record::ContainerSummary;
use crate::volumes::Volume;

/// `system df`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskUsage {
    pub layers_size: u64,
    pub images: Vec<ImageSummary>,
    /// Containers with their writable-layer size in bytes.
    pub containers: Vec<(ContainerSummary, u64)>,
    /// Volumes with their size in bytes and how many containers use them.
    pub volumes: Vec<(Volume, u64, u64)>,
}

/// Counts for `info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemCounts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
}

use crate::error::Result;
use crate::record::ContainerStatus;
use crate::Engine;

impl Engine {
    /// `system df`: images, containers (writable layer size), volumes.
    pub async fn system_df(&self) -> Result<DiskUsage> {
        let images = self.image_list(false, Default::default()).await?;
        let layers_size = images.iter().map(|i| i.size).sum();
        let now = chrono::Utc::now();
        let containers = self
            .all_containers()
            .iter()
            .map(|c| {
                let r = c.snapshot();
                let size = r
                    .graph_driver
                    .get("UpperDir")
                    .map(|u| crate::volumes::dir_size(std::path::Path::new(u)))
                    .unwrap_or(0);
                (crate::containers::summary(&r, now), size)
            })
            .collect();
        let volumes = self.volume_usage().await?;
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes,
        })
    }

    /// Counts for `info`.
    pub async fn system_counts(&self) -> Result<SystemCounts> {
        let mut s = SystemCounts::default();
        for c in self.all_containers() {
            s.containers += 1;
            match c.status() {
                ContainerStatus::Running | ContainerStatus::Restarting => s.running += 1,
                ContainerStatus::Paused => s.paused += 1,
                _ => s.stopped += 1,
            }
        }
        s.images = self
            .image_list(false, Default::default())
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        Ok(s)
    }
}
