//! Container services: create, list, inspect, start, stop, kill, restart, wait, remove,
//! rename, pause/unpause, top, resize, prune, attach.

use crate::attach::AttachStream;
use crate::error::{EngineError, Result};
use crate::options::*;
use crate::record::{ContainerRecord, ContainerSummary};
use crate::spec::ContainerSpec;
use crate::Engine;
use std::future::Future;
use std::pin::Pin;

/// A registered waiter: created at once (so the daemon can send its headers), resolved
/// when the condition is met.
pub struct WaitHandle {
    fut: Pin<Box<dyn Future<Output = WaitResult> + Send>>,
}

impl WaitHandle {
    pub(crate) fn new(fut: impl Future<Output = WaitResult> + Send + 'static) -> Self {
        WaitHandle { fut: Box::pin(fut) }
    }
    /// Wait for the condition.
    pub async fn result(self) -> WaitResult {
        self.fut.await
    }
}

impl std::fmt::Debug for WaitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitHandle")
    }
}

impl Engine {
    /// Create a container from `spec` (image defaults + overrides). Returns the id and
    /// warnings (e.g. limits clamped to what the host allows).
    pub async fn create_container(&self, spec: ContainerSpec) -> Result<CreateResult> {
        let _ = spec;
        Err(EngineError::not_implemented("create"))
    }

    /// List containers (running only unless `all`).
    pub async fn list_containers(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        let _ = opts;
        Err(EngineError::not_implemented("list"))
    }

    /// The full record of a container, by id, unique id prefix or name.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerRecord> {
        Err(EngineError::no_such_container(name))
    }

    /// Start a created or stopped container. `NotModified` when it already runs.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(EngineError::not_implemented("start"))
    }

    /// Send the stop signal, wait `timeout` seconds (the container's or the engine's default
    /// when `None`; negative = forever), then SIGKILL. `NotModified` when not running.
    pub async fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let _ = (name, timeout, signal);
        Err(EngineError::not_implemented("stop"))
    }

    /// Send a signal (`SIGKILL` when `None`). `Conflict` when not running.
    pub async fn kill_container(&self, name: &str, signal: Option<String>) -> Result<()> {
        let _ = (name, signal);
        Err(EngineError::not_implemented("kill"))
    }

    /// Stop (if running) then start.
    pub async fn restart_container(&self, name: &str, timeout: Option<i64>) -> Result<()> {
        let _ = (name, timeout);
        Err(EngineError::not_implemented("restart"))
    }

    /// Register a waiter. Errors (no such container) come at once; the handle resolves
    /// when the condition holds.
    pub async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitHandle> {
        let _ = (name, condition);
        Err(EngineError::not_implemented("wait"))
    }

    /// Remove a container (`Conflict` while running unless `force`).
    pub async fn remove_container(&self, name: &str, opts: RemoveOptions) -> Result<()> {
        let _ = (name, opts);
        Err(EngineError::not_implemented("remove"))
    }

    /// Rename (`Conflict` when the new name is taken).
    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        let _ = (name, new_name);
        Err(EngineError::not_implemented("rename"))
    }

    /// Freeze every process of a running container.
    pub async fn pause_container(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(EngineError::not_implemented("pause"))
    }

    /// Thaw a paused container.
    pub async fn unpause_container(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(EngineError::not_implemented("unpause"))
    }

    /// The container's processes, `ps -ef` shaped (`ps_args` is accepted for compatibility).
    pub async fn top_container(&self, name: &str, ps_args: Option<&str>) -> Result<TopResult> {
        let _ = (name, ps_args);
        Err(EngineError::not_implemented("top"))
    }

    /// Resize the container's TTY.
    pub async fn resize_container(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let _ = (name, rows, cols);
        Err(EngineError::not_implemented("resize"))
    }

    /// Remove every stopped container matching `filters`.
    pub async fn prune_containers(&self, filters: Filters) -> Result<PruneReport> {
        let _ = filters;
        Err(EngineError::not_implemented("container prune"))
    }

    /// Attach to a container's stdio. Works before `start` too (output from the first byte
    /// is delivered, as `docker run` needs).
    pub async fn attach_container(&self, name: &str, opts: AttachOptions) -> Result<AttachStream> {
        let _ = (name, opts);
        Err(EngineError::not_implemented("attach"))
    }
}
