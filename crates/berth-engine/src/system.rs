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
