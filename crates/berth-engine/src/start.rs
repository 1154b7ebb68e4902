//! `start`: mount the rootfs, write the per-container /etc files and the bundle, spawn the
//! shim (which creates the container), connect early attaches, then `START`.
//! The hot path: no exec but the shim, one fsync'd write (the record).

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::oci::{self, mounts::UserMount, EtcPaths, SpecInput};
use crate::record::{ContainerRecord, ContainerStatus};
use crate::shim_client::{self, ShimArgs};
use crate::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Engine {
    /// Start a created or stopped container. `NotModified` when it already runs.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _guard = c.lifecycle.lock().await;
        match c.status() {
            ContainerStatus::Running => return Err(EngineError::not_modified()),
            ContainerStatus::Paused => {
                return Err(EngineError::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            ContainerStatus::Removing | ContainerStatus::Dead => {
                return Err(EngineError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        c.update(|r| r.manually_stopped = false);
        self.start_locked(&c).await
    }

    /// Start with the lifecycle lock held.
    pub(crate) async fn start_locked(&self, c: &Arc<Container>) -> Result<()> {
        let rec = c.snapshot();
        match self.start_steps(c, &rec).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Docker records start failures on the container (127/126 for a missing or
                // non-executable command) and leaves it stopped.
                let code = match shim_client::classify(&e.message) {
                    shim_client::SpawnFailure::NotFound => 127,
                    shim_client::SpawnFailure::PermissionDenied => 126,
                    shim_client::SpawnFailure::Other => 128,
                };
                let rootfs = self.rootfs_dir(&c.id);
                let _ = berth_image::unmount(&rootfs);
                c.update(|r| {
                    r.state.error = e.message.clone();
                    r.state.exit_code = code;
                    r.state.running = false;
                    r.state.pid = 0;
                    if r.state.status != ContainerStatus::Created {
                        r.state.status = ContainerStatus::Exited;
                    }
                });
                let _ = self.save(c);
                c.state_tx.send_modify(|s| s.exit_code = code as i64);
                // Docker removes a `--rm` container whose start failed.
                if rec.config.host.auto_remove {
                    let engine = self.clone();
                    let id = c.id.clone();
                    tokio::spawn(async move {
                        let opts = crate::RemoveOptions {
                            force: true,
                            volumes: true,
                        };
                        if let Err(e) = engine.remove_container(&id, opts).await {
                            tracing::warn!(container = %id, "auto-remove after failed start: {e}");
                        }
                    });
                }
                Err(e)
            }
        }
    }

    async fn start_steps(&self, c: &Arc<Container>, rec: &ContainerRecord) -> Result<()> {
        let id = rec.id.as_str();
        let mut clock = PhaseClock::new(id);
        let state_dir = self.state_dir(id);
        let bundle = self.bundle_dir(id);
        let rootfs = self.rootfs_dir(id);
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| EngineError::io(format!("create {}", rootfs.display()), e))?;
        // The previous run's shim answers the exit before the runtime's cleanup: let it finish
        // (the runtime refuses an id whose state dir exists), or give up after a while.
        let runtime_state = self.runtime_root().join(id);
        let t_wait = std::time::Instant::now();
        while runtime_state.exists() && t_wait.elapsed() < std::time::Duration::from_secs(2) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // Leftovers of a previous run.
        for f in [
            shim_client::EXIT_JSON,
            shim_client::SHIM_JSON,
            shim_client::SOCKET,
        ] {
            let _ = std::fs::remove_file(state_dir.join(f));
        }

        // Rootfs: mount the overlay unless it still is (a restart after a crash).
        if !is_mountpoint(&rootfs) {
            let m = rootfs_mount_of(rec)?;
            berth_image::mount(&m, &rootfs)
                .map_err(|e| EngineError::internal(format!("mount rootfs: {e}")))?;
        }

        clock.lap("mount rootfs");
        // /etc files.
        let hostname = rec
            .config
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string());
        let etc = EtcPaths {
            hosts: PathBuf::from(&rec.hosts_path),
            hostname: PathBuf::from(&rec.hostname_path),
            resolv_conf: PathBuf::from(&rec.resolv_conf_path),
        };
        write_etc_files(rec, &hostname, &etc)?;

        // Volumes: fill new ones from the image.
        for m in rec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && !m.no_copy)
        {
            crate::volumes::copy_up(&rootfs, &m.destination, Path::new(&m.source));
        }
        for m in rec.mounts.iter().filter(|m| m.kind == "bind") {
            // `-v /host:/ctr` creates a missing host directory, as Docker does.
            if !Path::new(&m.source).exists() {
                std::fs::create_dir_all(&m.source)
                    .map_err(|e| EngineError::io(format!("create bind source {}", m.source), e))?;
            }
        }
        let mounts = start_mounts(rec)?;

        let join_netns = match rec.config.host.network_mode.strip_prefix("container:") {
            Some(other) => {
                let o = self.lookup(other)?;
                let pid = o.snapshot().state.pid;
                if pid <= 0 {
                    return Err(EngineError::conflict(format!(
                        "cannot join network of a non running container: {other}"
                    )));
                }
                Some(format!("/proc/{pid}/ns/net"))
            }
            None => None,
        };
        let args: Vec<String> = std::iter::once(rec.path.clone())
            .chain(rec.args.iter().cloned())
            .collect();
        let init = self.inner.config.init_binary();
        let built = oci::build(&SpecInput {
            config: &rec.config,
            args: &args,
            rootfs: &rootfs,
            hostname: &hostname,
            etc: Some(&etc),
            mounts: &mounts,
            cgroups_path: &rec.cgroup_path,
            init_binary: Some(&init),
            join_netns: join_netns.as_deref(),
            host: &self.inner.facts,
        })
        .map_err(|e| {
            if e.starts_with("unable to find") {
                EngineError::invalid(e)
            } else {
                EngineError::internal(e)
            }
        })?;
        clock.lap("etc files, volumes, spec");
        let spec_json =
            serde_json::to_vec(&built.spec).map_err(|e| EngineError::internal(e.to_string()))?;
        std::fs::write(bundle.join("config.json"), spec_json)
            .map_err(|e| EngineError::io("write bundle config.json", e))?;
        clock.lap("write bundle");

        // The shim: creates the container (not started yet) and listens.
        let log_path = PathBuf::from(&rec.log_path);
        let (max_size, max_files) = log_limits(rec, &self.inner.config);
        let runtime_root = self.runtime_root();
        let shim_args = ShimArgs {
            berth_binary: &self.inner.config.berth_binary,
            id,
            bundle: &bundle,
            state_dir: &state_dir,
            runtime_root: &runtime_root,
            log_path: &log_path,
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            log_max_size: max_size,
            log_max_files: max_files,
        };
        // The network step starts as soon as the shim sends the container's pid (right after
        // the clone), in parallel with the init's mounts; without an early pid it runs after.
        let (early_tx, early_rx) = tokio::sync::oneshot::channel::<i32>();
        let spawn = async {
            let r =
                shim_client::spawn(&shim_args, self.inner.zygote.as_ref(), Some(early_tx)).await;
            (r, std::time::Instant::now())
        };
        let early_net = async {
            let pid = early_rx.await.ok()?;
            let t = std::time::Instant::now();
            let r = self.connect_networks(c, pid).await;
            Some((r, t.elapsed()))
        };
        let ((spawned, spawned_at), early_net) = tokio::join!(spawn, early_net);
        let spawned = match (spawned, early_net) {
            (Ok(_), Some((Err(e), _))) => return Err(self.abort_created(c, &state_dir, e).await),
            (Err(e), net) => {
                if net.is_some() {
                    self.disconnect_networks(c).await;
                }
                return Err(e);
            }
            (Ok(s), net) => {
                clock.lap_at("spawn shim (runtime create)", spawned_at);
                clock.timeline.split_last(&s.phases);
                match net {
                    Some((_, took)) => {
                        clock.lap("networks");
                        clock.timeline.annotate_last(&format!(
                            "set up in parallel with the shim's create ({:.1} ms there), this step is only the wait for it after the shim reported",
                            took.as_secs_f64() * 1000.0
                        ));
                    }
                    None => {
                        // Networks: the netns exists now, the program has not started.
                        if let Err(e) = self.connect_networks(c, s.pid).await {
                            return Err(self.abort_created(c, &state_dir, e).await);
                        }
                        clock.lap("networks");
                    }
                }
                s
            }
        };
        let shim_pid = spawned.shim_pid;
        // Early attaches connect before START, so no output is missed.
        let pending =
            std::mem::take(&mut *c.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        let stdin_once = c.snapshot().config.stdin_once;
        for p in pending {
            match shim_client::attach(
                &state_dir,
                p.opts.stdin,
                p.opts.stdout,
                p.opts.stderr,
                false,
                stdin_once,
            )
            .await
            {
                Ok(stream) => crate::attach::splice(p.io, stream),
                Err(e) => tracing::warn!(container = %id, "early attach failed: {e}"),
            }
        }
        // The WAIT connection is opened before START so an instant exit is not missed.
        let wait = shim_client::wait(&state_dir).await;
        let pid = match shim_client::start(&state_dir).await {
            Ok(pid) => pid,
            Err(e) => return Err(self.abort_created(c, &state_dir, e).await),
        };
        clock.lap("attach, wait, START");
        c.update(|r| {
            r.state.status = ContainerStatus::Running;
            r.state.running = true;
            r.state.paused = false;
            r.state.restarting = false;
            r.state.oom_killed = false;
            r.state.dead = false;
            r.state.pid = pid;
            r.state.shim_pid = shim_pid;
            r.state.exit_code = 0;
            r.state.error = String::new();
            r.state.started_at = Some(chrono::Utc::now());
            r.rootfs = rootfs.display().to_string();
        });
        self.save_started(c)?;
        clock.lap("save record");
        c.state_tx.send_modify(|s| s.running = true);
        self.baseline_sample(c);
        self.emit_container(c, "start", &[]);
        match wait {
            Ok(stream) => self.monitor(c.clone(), Some(stream)),
            Err(_) => self.monitor(c.clone(), None),
        }
        self.start_health(c, true);
        clock.lap("publish state, start monitor");
        let tl = {
            let mut slot = c.timeline.lock().unwrap_or_else(|p| p.into_inner());
            let tl = crate::explain::timeline::start_timeline(slot.create.take(), &clock.timeline);
            slot.last = Some(tl.clone());
            tl
        };
        let dir = self.container_dir(id);
        self.spawn_cleanup(move || crate::explain::timeline::store(&dir, &tl));
        Ok(())
    }
}

impl Engine {
    /// A start failed after the shim created the container: kill it, release its network
    /// endpoints, and return `e`.
    async fn abort_created(&self, c: &Container, state_dir: &Path, e: EngineError) -> EngineError {
        let _ = shim_client::kill(state_dir, 9).await;
        self.disconnect_networks(c).await;
        e
    }
}

/// json-file rotation for this container: `--log-opt max-size/max-file` or the engine's.
fn log_limits(rec: &ContainerRecord, cfg: &crate::EngineConfig) -> (u64, u32) {
    let size = rec
        .config
        .host
        .log_opts
        .get("max-size")
        .and_then(|s| parse_size(s))
        .unwrap_or(cfg.log_max_size);
    let files = rec
        .config
        .host
        .log_opts
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .unwrap_or(cfg.log_max_files);
    (size, files)
}

/// `10m`, `1g`, `512k`, `1000` → bytes.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<f64>().ok().map(|n| (n * mul as f64) as u64)
}

/// The overlay directories stored at create (`GraphDriver.Data`).
pub(crate) fn rootfs_mount_of(rec: &ContainerRecord) -> Result<berth_image::RootfsMount> {
    let g = &rec.graph_driver;
    let get = |k: &str| {
        g.get(k).cloned().ok_or_else(|| {
            EngineError::internal(format!("container {} has no {k} recorded", rec.short_id()))
        })
    };
    Ok(berth_image::RootfsMount {
        lowerdirs: get("LowerDir")?
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        upper: PathBuf::from(get("UpperDir")?),
        work: PathBuf::from(get("WorkDir")?),
    })
}

/// Whether `p` is a mount point: `statx`'s `STATX_ATTR_MOUNT_ROOT` (Linux ≥ 5.8), else a line
/// of mountinfo. Why not always mountinfo: it holds every container's overlay (with its long
/// lowerdir list), so reading it on each start cost more the more containers ran (1.1 ms
/// per start with 60 running, in `perf`).
pub(crate) fn is_mountpoint(p: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    match rustix::fs::statx(
        CWD,
        p,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Ok(_) | Err(rustix::io::Errno::NOSYS) => mountinfo_has(p),
        Err(_) => false,
    }
}

fn mountinfo_has(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = p.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

fn write_etc_files(rec: &ContainerRecord, hostname: &str, etc: &EtcPaths) -> Result<()> {
    let h = &rec.config.host;
    let hosts =
        oci::etc_files::hosts(hostname, None, &h.extra_hosts).map_err(EngineError::invalid)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = oci::etc_files::resolv_conf(
        &host_resolv,
        &h.dns,
        &h.dns_search,
        &h.dns_options,
        h.network_mode == "host",
    );
    for (p, data) in [
        (&etc.hosts, hosts),
        (&etc.hostname, format!("{hostname}\n")),
        (&etc.resolv_conf, resolv),
    ] {
        // In the exec root's directory of the container, which `start_steps` has made (with
        // the rootfs mount point) before this.
        std::fs::write(p, data)
            .map_err(|e| EngineError::io(format!("write {}", p.display()), e))?;
    }
    Ok(())
}

/// The user mounts of a start: binds and volumes from the record, tmpfs from the config.
fn start_mounts(rec: &ContainerRecord) -> Result<Vec<(UserMount, String)>> {
    let mut out: Vec<(UserMount, String)> = rec
        .mounts
        .iter()
        .map(|m| {
            (
                UserMount {
                    kind: m.kind.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    read_only: !m.rw,
                    propagation: m.propagation.clone(),
                    tmpfs_options: vec![],
                    copy_image_data: false,
                    mode: m.mode.clone(),
                },
                m.source.clone(),
            )
        })
        .collect();
    let host_tmpfs = crate::spec::HostSpec {
        tmpfs: rec.config.host.tmpfs.clone(),
        mounts: rec
            .config
            .host
            .mounts
            .iter()
            .filter(|m| m.kind == "tmpfs")
            .cloned()
            .collect(),
        ..Default::default()
    };
    for um in oci::mounts::user_mounts(&host_tmpfs, &[]).map_err(EngineError::invalid)? {
        out.push((um, "tmpfs".into()));
    }
    out.sort_by_key(|(m, _)| m.destination.split('/').filter(|c| !c.is_empty()).count());
    Ok(out)
}

/// Per-phase timings of a start, logged at debug level (`RUST_LOG=berth_engine=debug`):
/// the start path is measured, not guessed.
struct PhaseClock<'a> {
    id: &'a str,
    last: std::time::Instant,
    /// The same laps, kept for `berth explain`.
    timeline: crate::explain::timeline::Recorder,
}

impl<'a> PhaseClock<'a> {
    fn new(id: &'a str) -> Self {
        PhaseClock {
            id,
            last: std::time::Instant::now(),
            timeline: crate::explain::timeline::Recorder::new("start"),
        }
    }
    fn lap(&mut self, phase: &str) {
        self.lap_at(phase, std::time::Instant::now());
    }
    /// A lap that ended at `now` (earlier than this call: a step measured in a joined future).
    fn lap_at(&mut self, phase: &str, now: std::time::Instant) {
        tracing::debug!(container = %&self.id[..12], phase, us = (now - self.last).as_micros() as u64, "start phase");
        self.last = now;
        self.timeline.lap_at(phase, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn rootfs_dirs_round_trip() {
        let mut rec = ContainerRecord::default();
        rec.graph_driver.insert("LowerDir".into(), "/l2:/l1".into());
        rec.graph_driver.insert("UpperDir".into(), "/u".into());
        rec.graph_driver.insert("WorkDir".into(), "/w".into());
        let m = rootfs_mount_of(&rec).unwrap();
        assert_eq!(
            m.lowerdirs,
            vec![PathBuf::from("/l2"), PathBuf::from("/l1")]
        );
        rec.graph_driver.clear();
        assert!(rootfs_mount_of(&rec).is_err());
    }

    #[test]
    fn proc_is_a_mountpoint() {
        assert!(is_mountpoint(Path::new("/proc")));
        assert!(!is_mountpoint(Path::new("/proc/self")));
        assert!(!is_mountpoint(Path::new("/no/such/dir")));
        // Both ways agree where statx answers.
        for p in ["/proc", "/proc/self", "/", "/sys", "/etc"] {
            assert_eq!(
                is_mountpoint(Path::new(p)),
                mountinfo_has(Path::new(p)),
                "{p}"
            );
        }
    }
}
