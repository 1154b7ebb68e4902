//! Startup: rebuild the container table from disk and reconcile it with the kernel.
//! A record whose shim is alive (shim.json pid exists and shim.sock answers) is re-adopted
//! as running; otherwise the exit in exit.json (or "unknown", 255) is recorded and the
//! rootfs mount and cgroup left behind are cleaned up. A bad record is logged and skipped,
//! never fatal. Restart policies and `--rm` then apply as if the daemon had seen the exit.

use crate::engine::{Container, WatchState};
use crate::monitor::exit_from_state_dir;
use crate::record::{ContainerRecord, ContainerStatus};
use crate::shim_client;
use crate::Engine;
use std::sync::Arc;

/// What to do with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its shim is alive: keep running, monitor it (container pid).
    Adopt(i32),
    /// It was running and is gone: record this exit.
    Exited,
    /// Not running and not supposed to be: nothing to do.
    Idle,
}

/// Decide from the record's status and the shim's liveness.
pub(crate) fn verdict(
    status: ContainerStatus,
    shim: Option<(i32, i32)>,
    shim_alive: bool,
    socket_ok: bool,
) -> Verdict {
    match (shim, shim_alive && socket_ok) {
        (Some((_, pid)), true) => Verdict::Adopt(pid),
        // The record of a start is written without fsync (the kernel is the truth for a live
        // container): a crash may leave "created" beside the dead shim of a run that happened.
        (Some(_), false) if status == ContainerStatus::Created => Verdict::Exited,
        _ => match status {
            ContainerStatus::Running
            | ContainerStatus::Paused
            | ContainerStatus::Restarting
            | ContainerStatus::Removing => Verdict::Exited,
            _ => Verdict::Idle,
        },
    }
}

impl Engine {
    pub(crate) async fn reconcile(&self) {
        let dir = self.inner.config.data_root.join("containers");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut loaded: Vec<Arc<Container>> = Vec::new();
        for e in rd.flatten() {
            let path = e.path().join("config.json");
            let name = e.file_name().to_string_lossy().into_owned();
            if !path.exists() && is_container_id(&name) {
                // A removal that a crash interrupted (the record goes first): finish it.
                tracing::info!(container = %name, "finishing an interrupted removal");
                let rec = ContainerRecord {
                    id: name.clone(),
                    cgroup_path: self.cgroup_path_of(&name),
                    ..Default::default()
                };
                self.remove_container_files(&Container::new(rec));
                continue;
            }
            let rec: ContainerRecord = match crate::store::read_json(&path) {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!("skipping container record {}: {err}", path.display());
                    continue;
                }
            };
            if rec.id.len() != 64 || e.file_name().to_string_lossy() != rec.id {
                tracing::warn!(
                    "skipping container record {}: id does not match its directory",
                    path.display()
                );
                continue;
            }
            let c = Container::new(rec);
            {
                let mut t = self
                    .inner
                    .containers
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                let mut rec = c.snapshot();
                if t.names.contains_key(&rec.name)
                    || crate::names::normalize_name(&rec.name).is_err()
                {
                    let new = format!("/{}", crate::names::random_name(1));
                    tracing::warn!(
                        "container {}: name {} is taken or invalid, renamed to {new}",
                        rec.id,
                        rec.name
                    );
                    rec.name = new;
                    c.update(|r| r.name = rec.name.clone());
                }
                t.names.insert(rec.name.clone(), rec.id.clone());
                t.by_id.insert(rec.id.clone(), c.clone());
            }
            loaded.push(c);
        }
        for c in &loaded {
            self.reconcile_one(c).await;
        }
        if let Some(net) = self.net() {
            let running: Vec<berth_net::RunningContainer> = loaded
                .iter()
                .map(|c| c.snapshot())
                .filter(|r| r.state.running && r.state.pid > 0)
                .map(|r| berth_net::RunningContainer {
                    container_id: r.id.clone(),
                    netns: format!("/proc/{}/ns/net", r.state.pid).into(),
                })
                .collect();
            if let Err(e) = net.restore(&running).await {
                tracing::warn!("restore network state: {e}");
            }
        }
    }

    async fn reconcile_one(&self, c: &Arc<Container>) {
        let rec = c.snapshot();
        // The layer list GC keeps for this container is written without fsync at create.
        if let Ok(m) = crate::start::rootfs_mount_of(&rec) {
            match self
                .inner
                .images
                .repair_container_layers(&rec.id, &m.lowerdirs)
            {
                Ok(true) => tracing::info!(container = %rec.id, "rewrote its lost layer list"),
                Ok(false) => {}
                Err(e) => tracing::warn!(container = %rec.id, "repair layer list: {e}"),
            }
        }
        let state_dir = self.state_dir(&rec.id);
        let shim = shim_client::read_shim_record(&state_dir);
        let alive = shim
            .as_ref()
            .map(|s| shim_client::pid_alive(s.shim_pid))
            .unwrap_or(false);
        let socket_ok = alive
            && tokio::net::UnixStream::connect(state_dir.join(shim_client::SOCKET))
                .await
                .is_ok();
        let v = verdict(
            rec.state.status,
            shim.as_ref().map(|s| (s.shim_pid, s.pid)),
            alive,
            socket_ok,
        );
        match v {
            Verdict::Adopt(pid) => {
                let frozen =
                    berth_cgroups::open(berth_cgroups::CgroupPath(rec.cgroup_path.clone()))
                        .and_then(|m| m.is_frozen())
                        .unwrap_or(false);
                c.update(|r| {
                    r.state.status = if frozen {
                        ContainerStatus::Paused
                    } else {
                        ContainerStatus::Running
                    };
                    r.state.running = true;
                    r.state.paused = frozen;
                    r.state.restarting = false;
                    r.state.pid = pid;
                    r.state.shim_pid = shim.as_ref().map(|s| s.shim_pid).unwrap_or(0);
                });
                c.state_tx.send_replace(WatchState {
                    running: true,
                    exit_code: rec.state.exit_code as i64,
                    ..Default::default()
                });
                let _ = self.save(c);
                self.baseline_sample(c);
                tracing::info!(container = %rec.id, "re-adopted running container (pid {pid})");
                self.monitor(c.clone(), None);
                self.start_health(c, false);
            }
            Verdict::Exited => {
                let exit = exit_from_state_dir(&state_dir);
                tracing::info!(container = %rec.id, "container exited while berth was down (code {})", exit.code);
                let removing = rec.state.status == ContainerStatus::Removing;
                // handle_exit applies --rm and the restart policy, as if we had seen it.
                self.handle_exit(c, exit).await;
                if removing {
                    let _ = self
                        .remove_container(
                            &rec.id,
                            crate::RemoveOptions {
                                force: true,
                                volumes: false,
                            },
                        )
                        .await;
                }
            }
            Verdict::Idle => {
                // Leftover mounts from a crash between start steps.
                let rootfs = self.rootfs_dir(&rec.id);
                if crate::start::is_mountpoint(&rootfs) {
                    let _ = berth_image::unmount(&rootfs);
                }
                // ... and an empty cgroup a crash left behind.
                self.destroy_cgroup(c);
                if rec.config.host.auto_remove && rec.state.status == ContainerStatus::Exited {
                    let _ = self
                        .remove_container(
                            &rec.id,
                            crate::RemoveOptions {
                                force: true,
                                volumes: true,
                            },
                        )
                        .await;
                } else if starts_with_daemon(&rec) {
                    // Docker starts `always` / `unless-stopped` containers when the daemon
                    // starts, unless the user stopped them.
                    let engine = self.clone();
                    let id = rec.id.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.start_container(&id).await {
                            tracing::warn!(container = %id, "start on daemon start: {e}");
                        }
                    });
                }
            }
        }
    }
}

/// Whether a stopped container is started when the daemon starts.
/// A full container id: 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn starts_with_daemon(rec: &ContainerRecord) -> bool {
    matches!(
        rec.config.host.restart_policy.name.as_str(),
        "always" | "unless-stopped"
    ) && !rec.manually_stopped
        && rec.state.status == ContainerStatus::Exited
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_start_restarts() {
        let mut r = ContainerRecord::default();
        r.state.status = ContainerStatus::Exited;
        r.config.host.restart_policy.name = "unless-stopped".into();
        assert!(starts_with_daemon(&r));
        r.manually_stopped = true;
        assert!(!starts_with_daemon(&r));
        r.manually_stopped = false;
        r.config.host.restart_policy.name = "on-failure".into();
        assert!(!starts_with_daemon(&r));
    }

    #[test]
    fn verdicts() {
        use ContainerStatus::*;
        assert_eq!(
            verdict(Running, Some((10, 11)), true, true),
            Verdict::Adopt(11)
        );
        // A live shim even for a record that says exited (crash after START, before save).
        assert_eq!(
            verdict(Created, Some((10, 11)), true, true),
            Verdict::Adopt(11)
        );
        assert_eq!(
            verdict(Running, Some((10, 11)), true, false),
            Verdict::Exited
        );
        assert_eq!(
            verdict(Running, Some((10, 11)), false, false),
            Verdict::Exited
        );
        assert_eq!(verdict(Running, None, false, false), Verdict::Exited);
        assert_eq!(verdict(Paused, None, false, false), Verdict::Exited);
        assert_eq!(verdict(Exited, None, false, false), Verdict::Idle);
        assert_eq!(verdict(Created, None, false, false), Verdict::Idle);
        // Started, but the (unsynced) record of the start was lost in a crash.
        assert_eq!(
            verdict(Created, Some((10, 11)), false, false),
            Verdict::Exited
        );
    }

    #[tokio::test]
    async fn interrupted_removal_is_finished_not_resurrected() {
        let d = tempfile::tempdir().unwrap();
        let cfg = crate::EngineConfig {
            data_root: d.path().join("data"),
            exec_root: d.path().join("exec"),
            net: None,
            ..Default::default()
        };
        let id = "a".repeat(64);
        // The record is gone (removed first), its other files are still there.
        let cdir = cfg.data_root.join("containers").join(&id);
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::write(cdir.join(format!("{id}-json.log")), b"{}").unwrap();
        let sdir = cfg.exec_root.join("containers").join(&id);
        std::fs::create_dir_all(&sdir).unwrap();
        std::fs::write(sdir.join("exit.json"), b"{}").unwrap();
        // Not an id: left alone.
        let other = cfg.data_root.join("containers").join("notes");
        std::fs::create_dir_all(&other).unwrap();
        let engine = Engine::open(cfg).await.unwrap();
        assert!(!cdir.exists() && !sdir.exists(), "removal was not finished");
        assert!(other.exists());
        assert_eq!(
            engine.inspect_container(&id).await.unwrap_err().kind,
            crate::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn bad_records_are_skipped_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let cfg = crate::EngineConfig {
            data_root: d.path().join("data"),
            exec_root: d.path().join("exec"),
            net: None,
            ..Default::default()
        };
        let cdir = cfg.data_root.join("containers");
        std::fs::create_dir_all(cdir.join("garbage")).unwrap();
        std::fs::write(cdir.join("garbage/config.json"), b"{not json").unwrap();
        let id = "e".repeat(64);
        std::fs::create_dir_all(cdir.join(&id)).unwrap();
        let rec = ContainerRecord {
            id: id.clone(),
            name: "/old".into(),
            state: crate::ContainerState {
                status: ContainerStatus::Running,
                running: true,
                pid: 999_999,
                ..Default::default()
            },
            ..Default::default()
        };
        crate::store::write_json(&cdir.join(&id).join("config.json"), &rec).unwrap();
        // The shim left an exit record before dying.
        let sdir = cfg.exec_root.join("containers").join(&id);
        std::fs::create_dir_all(&sdir).unwrap();
        std::fs::write(
            sdir.join("exit.json"),
            br#"{"exit_code":3,"oom_killed":false,"finished_at":"2026-01-01T00:00:00Z","pid":5}"#,
        )
        .unwrap();
        let engine = Engine::open(cfg).await.unwrap();
        let r = engine.inspect_container("old").await.unwrap();
        assert_eq!(r.state.status, ContainerStatus::Exited);
        assert_eq!(r.state.exit_code, 3);
        assert!(!r.state.running);
        // Persisted: a second open agrees.
        let again: ContainerRecord =
            crate::store::read_json(&cdir.join(&id).join("config.json")).unwrap();
        assert_eq!(again.state.exit_code, 3);
    }

    /// A live shim (a fake one here: our own pid and a socket that answers WAIT) is
    /// re-adopted as running, and its later EXIT is recorded.
    #[tokio::test]
    async fn live_shim_is_readopted_and_its_exit_recorded() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let d = tempfile::tempdir().unwrap();
        let cfg = crate::EngineConfig {
            data_root: d.path().join("data"),
            exec_root: d.path().join("exec"),
            net: None,
            ..Default::default()
        };
        let id = "f".repeat(64);
        let cdir = cfg.data_root.join("containers").join(&id);
        std::fs::create_dir_all(&cdir).unwrap();
        let me = std::process::id() as i32;
        let rec = ContainerRecord {
            id: id.clone(),
            name: "/adopted".into(),
            state: crate::ContainerState {
                status: ContainerStatus::Running,
                running: true,
                pid: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        crate::store::write_json(&cdir.join("config.json"), &rec).unwrap();
        let sdir = cfg.exec_root.join("containers").join(&id);
        std::fs::create_dir_all(&sdir).unwrap();
        std::fs::write(
            sdir.join("shim.json"),
            format!(r#"{{"shim_pid":{me},"pid":{me},"started_at":""}}"#),
        )
        .unwrap();
        let listener = tokio::net::UnixListener::bind(sdir.join("shim.sock")).unwrap();
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut exit_rx = Some(exit_rx);
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    continue; // the liveness probe
                }
                if line.trim() == "WAIT" {
                    if let Some(rx) = exit_rx.take() {
                        let _ = rx.await;
                    }
                    r.get_mut().write_all(b"EXIT 5 0\n").await.unwrap();
                }
            }
        });
        let engine = Engine::open(cfg).await.unwrap();
        let r = engine.inspect_container("adopted").await.unwrap();
        assert_eq!(r.state.status, ContainerStatus::Running);
        assert_eq!(
            r.state.pid, me,
            "pid comes from shim.json, not the stale record"
        );
        let w = engine
            .wait_container("adopted", crate::WaitCondition::NotRunning)
            .await
            .unwrap();
        exit_tx.send(()).unwrap();
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), w.result())
            .await
            .unwrap();
        assert_eq!(res.status_code, 5);
        let r = engine.inspect_container("adopted").await.unwrap();
        assert_eq!(
            (r.state.status, r.state.exit_code),
            (ContainerStatus::Exited, 5)
        );
    }
}
