//! Not-yet-built services (temporary: each moves to its own file as it is implemented).

use crate::attach::AttachStream;
use crate::error::{EngineError, Result};
use crate::exec::{ExecRecord, ExecSpec, ExecStartOptions};
use crate::images::{ImageDeleteItem, ImageDetails, ImageSummary, ProgressSender};
use crate::logs::{LogOptions, LogReceiver};
use crate::options::{Filters, PruneReport};
use crate::stats::{ContainerStats, StatsReceiver};
use crate::system::{DiskUsage, SystemCounts};
use crate::volumes::{Volume, VolumeSpec};
use crate::Engine;
use std::path::Path;

impl Engine {
    /// A container's logs.
    pub async fn container_logs(&self, name: &str, opts: LogOptions) -> Result<LogReceiver> {
        let _ = (name, opts);
        Err(EngineError::not_implemented("logs"))
    }
    /// One stats sample, with the previous one from the history as `pre`.
    pub async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let _ = name;
        Err(EngineError::not_implemented("stats"))
    }
    /// Stats, one sample per second until the receiver is dropped or the container stops.
    pub async fn container_stats_stream(&self, name: &str) -> Result<StatsReceiver> {
        let _ = name;
        Err(EngineError::not_implemented("stats"))
    }
    /// Create an exec in a running container; returns its id.
    pub async fn exec_create(&self, container: &str, spec: ExecSpec) -> Result<String> {
        let _ = (container, spec);
        Err(EngineError::not_implemented("exec create"))
    }
    /// Start an exec; returns its stream unless detached.
    pub async fn exec_start(
        &self,
        id: &str,
        opts: ExecStartOptions,
    ) -> Result<Option<AttachStream>> {
        let _ = (id, opts);
        Err(EngineError::not_implemented("exec start"))
    }
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecRecord> {
        Err(EngineError::no_such_exec(id))
    }
    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let _ = (id, rows, cols);
        Err(EngineError::not_implemented("exec resize"))
    }
    pub async fn volume_create(&self, spec: VolumeSpec) -> Result<Volume> {
        let _ = spec;
        Err(EngineError::not_implemented("volume create"))
    }
    pub async fn volume_list(&self, filters: Filters) -> Result<Vec<Volume>> {
        let _ = filters;
        Err(EngineError::not_implemented("volume list"))
    }
    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        Err(EngineError::no_such_volume(name))
    }
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _ = (name, force);
        Err(EngineError::not_implemented("volume remove"))
    }
    pub async fn volume_prune(&self, filters: Filters) -> Result<PruneReport> {
        let _ = filters;
        Err(EngineError::not_implemented("volume prune"))
    }
    /// Pull `reference` (`platform` like `linux/amd64`), sending progress messages.
    pub async fn image_pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        progress: Option<ProgressSender>,
    ) -> Result<ImageSummary> {
        let _ = (reference, platform, progress);
        Err(EngineError::not_implemented("pull"))
    }
    pub async fn image_list(&self, all: bool, filters: Filters) -> Result<Vec<ImageSummary>> {
        let _ = (all, filters);
        Err(EngineError::not_implemented("images"))
    }
    pub async fn image_inspect(&self, name: &str) -> Result<ImageDetails> {
        Err(EngineError::no_such_image(name))
    }
    /// Tag `source` as `repo[:tag]`.
    pub async fn image_tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let _ = (source, repo, tag);
        Err(EngineError::not_implemented("tag"))
    }
    /// Remove an image (refused while a container uses it unless `force`).
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let _ = (name, force, prune);
        Err(EngineError::not_implemented("rmi"))
    }
    /// Import a rootfs tarball as a single-layer image, tagged `reference` when given.
    pub async fn image_import(&self, tar: &Path, reference: Option<&str>) -> Result<ImageSummary> {
        let _ = (tar, reference);
        Err(EngineError::not_implemented("import"))
    }
    pub async fn system_df(&self) -> Result<DiskUsage> {
        Err(EngineError::not_implemented("system df"))
    }
    pub async fn system_counts(&self) -> Result<SystemCounts> {
        Err(EngineError::not_implemented("info"))
    }
}
