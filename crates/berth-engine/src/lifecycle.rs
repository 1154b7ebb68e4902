//! stop, kill, restart, remove, rename, pause/unpause, resize.

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::monitor::exit_from_state_dir;
use crate::options::RemoveOptions;
use crate::record::ContainerStatus;
use crate::shim_client;
use crate::Engine;
use std::sync::Arc;
use std::time::Duration;

/// `SIGTERM`, `TERM`, `15` → 15.
pub fn parse_signal(s: &str) -> Result<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    } else {
        let up = s.to_ascii_uppercase();
        let name = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        if let Ok(sig) = name.parse::<nix::sys::signal::Signal>() {
            return Ok(sig as i32);
        }
        if let Some(off) = name
            .strip_prefix("SIGRTMIN+")
            .and_then(|n| n.parse::<i32>().ok())
        {
            return Ok(34 + off);
        }
    }
    Err(EngineError::invalid(format!("Invalid signal: {s}")))
}

fn is_up(s: ContainerStatus) -> bool {
    matches!(s, ContainerStatus::Running | ContainerStatus::Paused)
}

impl Engine {
    /// Wait until the container has exited more than `before` times; `false` on timeout.
    pub(crate) async fn wait_exit(
        &self,
        c: &Container,
        before: u64,
        timeout: Option<Duration>,
    ) -> bool {
        let mut rx = c.state_tx.subscribe();
        let fut = rx.wait_for(|s| s.exits > before || s.removed);
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    /// Send a signal through the shim; when the shim is gone, record the exit.
    async fn signal(&self, c: &Arc<Container>, sig: i32) -> Result<()> {
        let state_dir = self.state_dir(&c.id);
        match shim_client::kill(&state_dir, sig).await {
            Ok(()) => {}
            Err(e) => {
                let shim_pid = c.snapshot().state.shim_pid;
                if shim_client::pid_alive(shim_pid) {
                    return Err(e);
                }
                // The shim died behind our back: what we know is on disk.
                let exit = exit_from_state_dir(&state_dir);
                self.handle_exit(c, exit).await;
                return Ok(());
            }
        }
        if c.status() == ContainerStatus::Paused {
            // A frozen task ignores signals until thawed (cgroup v1 freezer).
            self.thaw(c);
        }
        Ok(())
    }

    /// Stop with the lifecycle lock held.
    async fn stop_locked(
        &self,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let rec = c.snapshot();
        if !is_up(rec.state.status) {
            return Err(EngineError::not_modified());
        }
        c.update(|r| r.manually_stopped = true);
        let _ = self.save(c);
        let sig = match signal
            .or(rec.config.stop_signal.clone())
            .filter(|s| !s.is_empty())
        {
            Some(s) => parse_signal(&s)?,
            None => 15,
        };
        let timeout = timeout
            .or(rec.config.stop_timeout)
            .unwrap_or(self.inner.config.default_stop_timeout as i64);
        let before = c.state_tx.borrow().exits;
        self.signal(c, sig).await?;
        let limit = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
        if !self.wait_exit(c, before, limit).await {
            self.signal(c, 9).await?;
            if !self
                .wait_exit(c, before, Some(Duration::from_secs(30)))
                .await
            {
                return Err(EngineError::internal(format!(
                    "container {} did not exit after SIGKILL; check for processes stuck in the kernel",
                    c.id
                )));
            }
        }
        self.emit_container(c, "stop", &[]);
        Ok(())
    }

    /// Send the stop signal, wait `timeout` seconds (the container's or the engine's default
    /// when `None`; negative = forever), then SIGKILL. `NotModified` when not running.
    pub async fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<()> {
        let c = self.lookup(name)?;
        let _g = c.lifecycle.lock().await;
        self.stop_locked(&c, timeout, signal).await
    }

    /// Send a signal (`SIGKILL` when `None`). `Conflict` when not running.
    pub async fn kill_container(&self, name: &str, signal: Option<String>) -> Result<()> {
        let c = self.lookup(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(&s)?,
            None => 9,
        };
        let rec = c.snapshot();
        if !is_up(rec.state.status) {
            return Err(EngineError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                name, rec.id
            )));
        }
        c.update(|r| r.manually_stopped = true);
        self.signal(&c, sig).await?;
        self.emit_container(&c, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Stop (if running) then start.
    pub async fn restart_container(&self, name: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.lookup(name)?;
        let _g = c.lifecycle.lock().await;
        match self.stop_locked(&c, timeout, None).await {
            Ok(()) => {}
            Err(e) if e.kind == crate::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        c.update(|r| r.manually_stopped = false);
        self.start_locked(&c).await?;
        self.emit_container(&c, "restart", &[]);
        Ok(())
    }

    /// Remove a container (`Conflict` while running unless `force`).
    pub async fn remove_container(&self, name: &str, opts: RemoveOptions) -> Result<()> {
        self.remove_inner(name, opts, false).await
    }

    /// Remove a `--rm` container after its exit: its files go in the background, so `run --rm`
    /// returns as soon as the container is gone from the table.
    pub(crate) async fn auto_remove(&self, name: &str) -> Result<()> {
        let opts = RemoveOptions {
            force: true,
            volumes: true,
        };
        self.remove_inner(name, opts, true).await
    }

    async fn remove_inner(&self, name: &str, opts: RemoveOptions, background: bool) -> Result<()> {
        let c = self.lookup(name)?;
        let _g = c.lifecycle.lock().await;
        let rec = c.snapshot();
        if rec.state.status == ContainerStatus::Removing {
            return Err(EngineError::conflict(format!(
                "removal of container {} is already in progress",
                rec.id
            )));
        }
        if is_up(rec.state.status) || rec.state.status == ContainerStatus::Restarting {
            if !opts.force {
                let msg = if rec.state.status == ContainerStatus::Paused {
                    format!("You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove", rec.id)
                } else {
                    format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", rec.id)
                };
                return Err(EngineError::conflict(msg));
            }
            c.update(|r| r.manually_stopped = true);
            if is_up(rec.state.status) {
                let before = c.state_tx.borrow().exits;
                self.signal(&c, 9).await?;
                if !self
                    .wait_exit(&c, before, Some(Duration::from_secs(30)))
                    .await
                {
                    return Err(EngineError::internal(format!(
                        "could not kill running container {}, cannot remove",
                        rec.id
                    )));
                }
            }
        }
        c.update(|r| r.state.status = ContainerStatus::Removing);
        let id = rec.id.clone();
        let t0 = std::time::Instant::now();
        // The record goes first: a container dir without it is an interrupted removal, which
        // the next daemon finishes (reconcile) instead of bringing the container back.
        let record = self.container_dir(&id).join("config.json");
        if let Err(e) = std::fs::remove_file(&record) {
            if e.kind() != std::io::ErrorKind::NotFound {
                c.update(|r| r.state.status = rec.state.status);
                return Err(EngineError::io(format!("remove {}", record.display()), e));
            }
        }
        {
            let mut t = self
                .inner
                .containers
                .write()
                .unwrap_or_else(|p| p.into_inner());
            t.by_id.remove(&id);
            if t.names.get(&rec.name) == Some(&id) {
                t.names.remove(&rec.name);
            }
        }
        // The rest: unmount, the rootfs' upper and work dirs, cgroups, state dirs.
        if background {
            let engine = self.clone();
            let files = c.clone();
            self.spawn_cleanup(move || engine.remove_container_files(&files));
        } else {
            self.remove_container_files(&c);
        }
        self.forget_execs(&id);
        if opts.volumes {
            for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                if self.volume_is_anonymous(&m.name) {
                    if let Err(e) = self.volume_remove(&m.name, false).await {
                        tracing::warn!(volume = %m.name, "remove anonymous volume: {e}");
                    }
                }
            }
        }
        tracing::debug!(container = %&id[..12], us = t0.elapsed().as_micros() as u64, "removed");
        self.emit_container(&c, "destroy", &[]);
        c.state_tx.send_modify(|s| s.removed = true);
        Ok(())
    }

    /// What a removed container leaves on disk and in the kernel; also finishes removals a
    /// crash interrupted (see reconcile).
    pub(crate) fn remove_container_files(&self, c: &Container) {
        let id = &c.id;
        let rootfs = self.rootfs_dir(id);
        let _ = berth_image::unmount(&rootfs);
        if let Err(e) = self.inner.images.remove_container_rootfs(id) {
            tracing::warn!(container = %id, "remove rootfs: {e}");
        }
        self.destroy_cgroup(c);
        let _ = std::fs::remove_dir_all(self.state_dir(id));
        let _ = std::fs::remove_dir_all(self.container_dir(id));
    }

    /// Rename (`Conflict` when the new name is taken).
    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let new = crate::names::normalize_name(new_name)?;
        let old = c.snapshot().name;
        if old == new {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut t = self
                .inner
                .containers
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(other) = t.names.get(&new) {
                return Err(EngineError::name_in_use(&new, other));
            }
            t.names.remove(&old);
            t.names.insert(new.clone(), c.id.clone());
        }
        c.update(|r| {
            r.name = new.clone();
            r.config.name = Some(new.clone());
        });
        self.save(&c)?;
        self.emit_container(&c, "rename", &[("oldName", old)]);
        Ok(())
    }

    fn cgroup(&self, c: &Container) -> Result<Box<dyn berth_cgroups::CgroupManager>> {
        berth_cgroups::open(berth_cgroups::CgroupPath(c.snapshot().cgroup_path))
            .map_err(|e| EngineError::internal(format!("cgroup: {e}")))
    }

    fn thaw(&self, c: &Container) {
        if let Ok(m) = self.cgroup(c) {
            let _ = m.thaw();
        }
        c.update(|r| {
            r.state.paused = false;
            if r.state.status == ContainerStatus::Paused {
                r.state.status = ContainerStatus::Running;
            }
        });
    }

    /// Freeze every process of a running container.
    pub async fn pause_container(&self, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _g = c.lifecycle.lock().await;
        let rec = c.snapshot();
        match rec.state.status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            _ => {
                return Err(EngineError::conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        self.cgroup(&c)?
            .freeze()
            .map_err(|e| EngineError::internal(format!("pause: {e}")))?;
        c.update(|r| {
            r.state.status = ContainerStatus::Paused;
            r.state.paused = true;
        });
        c.state_tx.send_modify(|s| s.paused = true);
        self.save(&c)?;
        self.emit_container(&c, "pause", &[]);
        Ok(())
    }

    /// Thaw a paused container.
    pub async fn unpause_container(&self, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _g = c.lifecycle.lock().await;
        let rec = c.snapshot();
        if rec.state.status != ContainerStatus::Paused {
            return Err(EngineError::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.cgroup(&c)?
            .thaw()
            .map_err(|e| EngineError::internal(format!("unpause: {e}")))?;
        c.update(|r| {
            r.state.status = ContainerStatus::Running;
            r.state.paused = false;
        });
        c.state_tx.send_modify(|s| s.paused = false);
        self.save(&c)?;
        self.emit_container(&c, "unpause", &[]);
        Ok(())
    }

    /// Resize the container's TTY.
    pub async fn resize_container(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        if !is_up(rec.state.status) {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        shim_client::resize(&self.state_dir(&c.id), rows, cols).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGQUIT").unwrap(), 3);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(
            parse_signal("NOPE").unwrap_err().message,
            "Invalid signal: NOPE"
        );
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }
}
