//! The monitor: one task per running container holding a `WAIT` on its shim. When the
//! container exits it records the exit, cleans up the rootfs mount, notifies waiters, and
//! applies `--rm` and the restart policy. Tasks hold only a weak engine reference, so a
//! dropped engine (or [`Engine::shutdown`]) leaves the containers to the next engine.

use crate::engine::Container;
use crate::record::ContainerStatus;
use crate::shim_client;
use crate::Engine;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitInfo {
    pub code: i32,
    pub oom: bool,
    pub finished_at: DateTime<Utc>,
    pub error: String,
}

/// Read `exit.json`, or report an unknown end (the shim died without recording one).
pub(crate) fn exit_from_state_dir(state_dir: &std::path::Path) -> ExitInfo {
    match shim_client::read_exit_record(state_dir) {
        Some(e) => ExitInfo {
            code: e.exit_code,
            oom: e.oom_killed,
            finished_at: DateTime::parse_from_rfc3339(&e.finished_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now()),
            error: String::new(),
        },
        None => ExitInfo {
            code: 255,
            oom: false,
            finished_at: Utc::now(),
            error: "the container's shim exited without recording an exit status".into(),
        },
    }
}

impl Engine {
    /// Watch a running container; `wait` is an already-sent `WAIT` connection.
    pub(crate) fn monitor(&self, c: Arc<Container>, wait: Option<tokio::net::UnixStream>) {
        let weak = self.weak();
        let state_dir = self.state_dir(&c.id);
        self.spawn_task(async move {
            let res = match wait {
                Some(s) => shim_client::wait_result(s).await,
                None => match shim_client::wait(&state_dir).await {
                    Ok(s) => shim_client::wait_result(s).await,
                    Err(e) => Err(e),
                },
            };
            let exit = match res {
                Ok((code, oom)) => {
                    let mut e = exit_from_state_dir(&state_dir);
                    e.code = code;
                    e.oom = oom;
                    e.error.clear();
                    e
                }
                Err(_) => {
                    // The connection broke: the shim is gone; give it a moment to finish
                    // writing exit.json if it is exiting right now.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    exit_from_state_dir(&state_dir)
                }
            };
            if let Some(engine) = Engine::from_weak(&weak) {
                engine.handle_exit(&c, exit).await;
            }
        });
    }

    /// Record an exit and act on it. (Boxed: it can lead to `remove`, which can lead back
    /// here, and a recursive `async fn` has no nameable, `Send` type.)
    pub(crate) fn handle_exit<'a>(
        &'a self,
        c: &'a Arc<Container>,
        exit: ExitInfo,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(self.handle_exit_inner(c, exit))
    }

    async fn handle_exit_inner(&self, c: &Arc<Container>, exit: ExitInfo) {
        let id = c.id.clone();
        let t0 = std::time::Instant::now();
        // A `--rm` container's rootfs and cgroup go with its files, in the background (an
        // unmount waits for an RCU grace period, ~1 ms): `run --rm` does not wait for them.
        let removing = c.snapshot().config.host.auto_remove;
        if !removing {
            let rootfs = self.rootfs_dir(&id);
            if let Err(e) = berth_image::unmount(&rootfs) {
                tracing::warn!(container = %id, "unmount rootfs: {e}");
            }
        }
        let t_unmount = t0.elapsed();
        if !removing {
            self.destroy_cgroup(c);
        }
        let t_cgroup = t0.elapsed();
        self.disconnect_networks(c).await;
        let t_net = t0.elapsed();
        let started_at = c.update(|r| {
            r.state.status = ContainerStatus::Exited;
            r.state.running = false;
            r.state.paused = false;
            r.state.restarting = false;
            r.state.pid = 0;
            r.state.shim_pid = 0;
            r.state.exit_code = exit.code;
            r.state.oom_killed = exit.oom;
            r.state.finished_at = Some(exit.finished_at);
            if !exit.error.is_empty() {
                r.state.error = exit.error.clone();
            }
            // The probes stop with the container (their loop watches the exit count); Docker
            // then reports the health as unhealthy until the next start.
            if let Some(h) = &mut r.state.health {
                h.status = crate::health::HealthStatus::Unhealthy;
            }
            r.state.started_at
        });
        // A `--rm` container is deleted right away: its exit need not be made durable (after
        // a crash, reconcile finds it exited and removes it anyway). One fsync less per run.
        if !removing {
            if let Err(e) = self.save(c) {
                tracing::warn!(container = %id, "save after exit: {e}");
            }
        }
        tracing::debug!(
            container = %&id[..12],
            us = t0.elapsed().as_micros() as u64,
            unmount_us = t_unmount.as_micros() as u64,
            cgroup_us = (t_cgroup - t_unmount).as_micros() as u64,
            network_us = (t_net - t_cgroup).as_micros() as u64,
            "exit recorded (unmount, cgroup, network, save)"
        );
        self.finish_execs(&id);
        if exit.oom {
            self.emit_container(c, "oom", &[]);
        }
        self.emit_container(c, "die", &[("exitCode", exit.code.to_string())]);
        // Decide from the state as of this exit, before waiters (a `restart` holding the
        // lifecycle lock) wake up and change it.
        let rec = c.snapshot();
        c.state_tx.send_modify(|s| {
            s.exits += 1;
            s.exit_code = exit.code as i64;
            s.running = false;
        });

        if rec.config.host.auto_remove {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.auto_remove(&id).await {
                    tracing::warn!(container = %id, "auto-remove: {e}");
                }
            });
            return;
        }
        if should_restart(
            &rec.config.host.restart_policy,
            exit.code,
            rec.restart_count,
            rec.manually_stopped,
        ) {
            let ran = started_at.map(|s| exit.finished_at - s).unwrap_or_default();
            // Docker's backoff: 100 ms doubling per restart, reset after 10 s of running.
            let delay = if ran > chrono::Duration::seconds(10) {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(100 * (1u64 << rec.restart_count.min(9)))
            };
            let marked = c.update(|r| {
                if r.state.status != ContainerStatus::Exited || r.manually_stopped {
                    return false; // started or stopped by someone else meanwhile
                }
                r.state.status = ContainerStatus::Restarting;
                r.state.restarting = true;
                true
            });
            if !marked {
                return;
            }
            let weak = self.weak();
            let c = c.clone();
            self.spawn_task(async move {
                tokio::time::sleep(delay).await;
                let Some(engine) = Engine::from_weak(&weak) else {
                    return;
                };
                let _g = c.lifecycle.lock().await;
                if c.status() != ContainerStatus::Restarting || c.snapshot().manually_stopped {
                    return;
                }
                c.update(|r| r.restart_count += 1);
                if let Err(e) = engine.start_locked(&c).await {
                    tracing::warn!(container = %c.id, "restart failed: {e}");
                    c.update(|r| {
                        r.state.status = ContainerStatus::Exited;
                        r.state.restarting = false;
                    });
                    let _ = engine.save(&c);
                } else {
                    engine.emit_container(&c, "restart", &[]);
                }
            });
        }
    }

    /// Remove the container's cgroup if the runtime left it behind (best effort).
    pub(crate) fn destroy_cgroup(&self, c: &Container) {
        let path = c.snapshot().cgroup_path;
        if path.is_empty() {
            return;
        }
        if let Ok(m) = berth_cgroups::open(berth_cgroups::CgroupPath(path)) {
            if m.pids().map(|p| p.is_empty()).unwrap_or(false) {
                let _ = m.destroy();
            }
        }
    }
}

/// The restart decision (Docker's rules; a manual stop always wins).
pub(crate) fn should_restart(
    policy: &crate::spec::RestartPolicy,
    exit_code: i32,
    restart_count: u64,
    manually_stopped: bool,
) -> bool {
    if manually_stopped {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            exit_code != 0
                && (policy.maximum_retry_count == 0
                    || (restart_count as i64) < policy.maximum_retry_count)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RestartPolicy;

    fn p(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn restart_rules() {
        assert!(!should_restart(&p("no", 0), 1, 0, false));
        assert!(!should_restart(&p("", 0), 1, 0, false));
        assert!(should_restart(&p("always", 0), 0, 5, false));
        assert!(!should_restart(&p("always", 0), 0, 5, true));
        assert!(should_restart(&p("unless-stopped", 0), 0, 0, false));
        assert!(!should_restart(&p("on-failure", 0), 0, 0, false));
        assert!(should_restart(&p("on-failure", 0), 1, 100, false));
        assert!(should_restart(&p("on-failure", 2), 1, 1, false));
        assert!(!should_restart(&p("on-failure", 2), 1, 2, false));
    }

    #[test]
    fn exit_json_or_unknown() {
        let d = tempfile::tempdir().unwrap();
        let e = exit_from_state_dir(d.path());
        assert_eq!(e.code, 255);
        assert!(!e.error.is_empty());
        std::fs::write(
            d.path().join("exit.json"),
            r#"{"exit_code":137,"oom_killed":true,"finished_at":"2026-11-28T03:21:36.123456789Z","pid":5}"#,
        )
        .unwrap();
        let e = exit_from_state_dir(d.path());
        assert_eq!((e.code, e.oom), (137, true));
        assert_eq!(e.finished_at.timestamp(), 1795836096);
    }
}
