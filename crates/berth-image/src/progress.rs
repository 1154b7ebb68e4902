//! Pull progress events: berth's own enum, which the daemon turns into Docker's JSON
//! progress messages (`{"status":"Downloading","progressDetail":{…},"id":"…"}`).

use crate::digest::Digest;

/// One step of a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// `{"status":"Pulling from library/busybox","id":"latest"}`
    PullingFrom { repository: String, tag: String },
    /// A per-layer status; `id` is the layer digest's 12-hex short form.
    Layer { id: String, status: LayerStatus },
    /// `{"status":"Digest: sha256:…"}`
    Digest(Digest),
    /// `{"status":"Status: Downloaded newer image for busybox:latest"}` (or "Image is up to date for …")
    Status(String),
}

/// Per-layer states, in the order they usually come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerStatus {
    PullingFsLayer,
    Waiting,
    AlreadyExists,
    Downloading { current: u64, total: u64 },
    VerifyingChecksum,
    DownloadComplete,
    Extracting { current: u64, total: u64 },
    PullComplete,
}

impl LayerStatus {
    /// Docker's `status` text for this state.
    pub fn docker_status(&self) -> &'static str {
        match self {
            LayerStatus::PullingFsLayer => "Pulling fs layer",
            LayerStatus::Waiting => "Waiting",
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::Downloading { .. } => "Downloading",
            LayerStatus::VerifyingChecksum => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::Extracting { .. } => "Extracting",
            LayerStatus::PullComplete => "Pull complete",
        }
    }

    /// `(current, total)` for `progressDetail`, when the state has a bar.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match self {
            LayerStatus::Downloading { current, total }
            | LayerStatus::Extracting { current, total } => Some((*current, *total)),
            _ => None,
        }
    }
}
