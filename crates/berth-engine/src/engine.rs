//! The [`Engine`] handle: cheap to clone, shared by every request the daemon serves.
//! Holds the in-memory container table (rebuilt from disk on open), the image store, the
//! event bus and the facts about the host the OCI specs depend on.

use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::events::EventBus;
use crate::exec::ExecEntry;
use crate::oci::HostFacts;
use crate::record::{ContainerRecord, ContainerStatus};
use berth_image::ImageStore;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};

/// The container engine. Clone it freely: clones share one state.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_root", &self.inner.config.data_root)
            .field("exec_root", &self.inner.config.exec_root)
            .finish()
    }
}

pub(crate) struct Inner {
    pub config: EngineConfig,
    pub containers: RwLock<ContainerTable>,
    pub events: EventBus,
    pub images: Arc<ImageStore>,
    pub facts: HostFacts,
    pub execs: Mutex<HashMap<String, Arc<ExecEntry>>>,
    /// Serialises volume creation/removal.
    pub volumes_lock: tokio::sync::Mutex<()>,
    /// Background tasks (monitors, restarts), aborted by [`Engine::shutdown`].
    pub tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// File and cgroup cleanups of removed containers, finished by [`Engine::settle`].
    pub cleanups: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// `None` when networking is off (or could not be set up: see the log).
    pub net: Option<berth_net::NetworkManager>,
    /// Forks shims (see [`crate::zygote`]); `None` when the config turns it off.
    pub zygote: Option<crate::zygote::Zygote>,
}

/// In-memory index of containers: by id, and name (with `/`) → id.
#[derive(Default)]
pub(crate) struct ContainerTable {
    pub by_id: HashMap<String, Arc<Container>>,
    pub names: HashMap<String, String>,
}

/// A container's live entry.
pub(crate) struct Container {
    pub id: String,
    pub record: Mutex<ContainerRecord>,
    /// Serialises lifecycle operations (start/stop/remove) on one container.
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Watched by `wait` and `stop`.
    pub state_tx: tokio::sync::watch::Sender<WatchState>,
    /// Attach requests made before the shim exists (`docker run` attaches before start).
    pub pending_attach: Mutex<Vec<crate::attach::PendingAttach>>,
    /// Recent stats samples (for a one-shot reply with a precpu sample).
    pub samples: Mutex<VecDeque<crate::stats::Sample>>,
    /// Start timelines (`berth explain`).
    pub timeline: Mutex<crate::explain::timeline::Slot>,
}

/// What waiters observe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WatchState {
    /// Number of exits observed since the engine opened.
    pub exits: u64,
    pub exit_code: i64,
    pub running: bool,
    pub removed: bool,
    /// Frozen by `pause` (the healthcheck loop stops probing while set).
    pub paused: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container").field("id", &self.id).finish()
    }
}

impl Container {
    pub fn new(record: ContainerRecord) -> Arc<Container> {
        let running = matches!(
            record.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        );
        let (tx, _) = tokio::sync::watch::channel(WatchState {
            exits: 0,
            exit_code: record.state.exit_code as i64,
            running,
            removed: false,
            paused: record.state.status == ContainerStatus::Paused,
        });
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            lifecycle: tokio::sync::Mutex::new(()),
            state_tx: tx,
            pending_attach: Mutex::new(Vec::new()),
            samples: Mutex::new(VecDeque::new()),
            timeline: Mutex::new(Default::default()),
        })
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> ContainerRecord {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Mutate the record in place.
    pub fn update<R>(&self, f: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        let mut g = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn status(&self) -> ContainerStatus {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .status
    }
}

impl Engine {
    /// Open the engine: create its directories, load container records and reconcile them
    /// with what is running (live shims are re-adopted, dead ones cleaned up).
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        // The shim's socket is `<exec_root>/containers/<64 hex>/shim.sock`, and a unix
        // socket path holds at most 107 bytes.
        let sock_len =
            config.exec_root.as_os_str().len() + "/containers/".len() + 64 + "/shim.sock".len();
        if sock_len > 107 {
            return Err(EngineError::invalid(format!(
                "exec root {} is too long: shim socket paths under it would exceed 107 bytes; use a shorter --exec-root",
                config.exec_root.display()
            )));
        }
        for dir in [
            config.data_root.join("containers"),
            config.data_root.join("volumes"),
            config.exec_root.join("containers"),
            config.exec_root.join("runtime"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        }
        let images = ImageStore::open(
            &config.data_root,
            berth_image::RegistryConfig {
                insecure: config.insecure_registries.clone(),
                auth_file: None,
                ..Default::default()
            },
        )
        .map_err(|e| EngineError::internal(format!("open the image store: {e}")))?;
        let net = match &config.net {
            Some(nc) => {
                match berth_net::NetworkManager::open(&config.data_root.join("network"), nc.clone())
                    .await
                {
                    Ok(n) => Some(n),
                    Err(e) => {
                        tracing::warn!("networking unavailable, containers get loopback only: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        let zygote = config.shim_zygote.then(|| {
            crate::zygote::Zygote::start(
                crate::shim_client::shim_program(&config.berth_binary),
                &config.exec_root,
            )
        });
        let engine = Engine {
            inner: Arc::new(Inner {
                net,
                zygote,
                config,
                containers: RwLock::new(ContainerTable::default()),
                events: EventBus::new(),
                images: Arc::new(images),
                facts: HostFacts::current(),
                execs: Mutex::new(HashMap::new()),
                volumes_lock: tokio::sync::Mutex::new(()),
                tasks: Mutex::new(Vec::new()),
                cleanups: Mutex::new(Vec::new()),
            }),
        };
        engine.reconcile().await;
        Ok(engine)
    }

    /// Stop the engine's background tasks (monitors). Containers keep running in their
    /// shims; a new engine re-adopts them.
    pub fn shutdown(&self) {
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The image store (shared with the daemon for image endpoints it maps itself).
    pub fn image_store(&self) -> &Arc<ImageStore> {
        &self.inner.images
    }

    pub(crate) fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn from_weak(w: &Weak<Inner>) -> Option<Engine> {
        w.upgrade().map(|inner| Engine { inner })
    }

    /// Run a blocking cleanup off the request path; [`Engine::settle`] waits for it.
    pub(crate) fn spawn_cleanup(&self, f: impl FnOnce() + Send + 'static) {
        let h = tokio::task::spawn_blocking(f);
        let mut c = self
            .inner
            .cleanups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.retain(|t| !t.is_finished());
        c.push(h);
    }

    /// Wait for the background cleanups of removed containers (before the daemon exits, and
    /// in tests that look at the disk right after a `--rm` container is gone).
    pub async fn settle(&self) {
        let pending = std::mem::take(
            &mut *self
                .inner
                .cleanups
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for h in pending {
            let _ = h.await;
        }
    }

    pub(crate) fn spawn_task(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(fut);
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(h.abort_handle());
    }

    // ---- paths ----

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.inner.config.data_root.join("containers").join(id)
    }
    /// The container's cgroup, under the engine's cgroup parent.
    pub(crate) fn cgroup_path_of(&self, id: &str) -> String {
        format!(
            "{}/{}",
            self.inner.config.cgroup_parent.trim_end_matches('/'),
            id
        )
    }
    pub(crate) fn state_dir(&self, id: &str) -> PathBuf {
        self.inner.config.exec_root.join("containers").join(id)
    }
    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("bundle")
    }
    pub(crate) fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.bundle_dir(id).join("rootfs")
    }
    pub(crate) fn runtime_root(&self) -> PathBuf {
        self.inner.config.exec_root.join("runtime")
    }

    // ---- lookup ----

    /// Find a container by full id, name (with or without `/`), or unique id prefix.
    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<Container>> {
        let t = self
            .inner
            .containers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        lookup_in(&t, name)
    }

    /// Write the container's record: durably (fsync'd), except for a `--rm` container, whose
    /// fate after a crash is removal whatever the record says (one fsync less per `run --rm`).
    pub(crate) fn save(&self, c: &Container) -> Result<()> {
        self.save_record(c, true)
    }

    /// Write the record of a started container without fsync: after a crash, reconcile takes
    /// a running container from its live shim (and a dead shim's exit from its state dir),
    /// not from this record, so losing this write costs nothing (~0.6 ms per start saved).
    pub(crate) fn save_started(&self, c: &Container) -> Result<()> {
        self.save_record(c, false)
    }

    fn save_record(&self, c: &Container, durable: bool) -> Result<()> {
        let rec = c.snapshot();
        let path = self.container_dir(&rec.id).join("config.json");
        let data = serde_json::to_vec(&rec).map_err(|e| EngineError::internal(e.to_string()))?;
        if rec.config.host.auto_remove || !durable {
            crate::store::write_volatile(&path, &data)
        } else {
            crate::store::write_atomic(&path, &data)
        }
        .map_err(|e| EngineError::io(format!("save container {}", rec.short_id()), e))
    }

    pub(crate) fn all_containers(&self) -> Vec<Arc<Container>> {
        let t = self
            .inner
            .containers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        t.by_id.values().cloned().collect()
    }
}

/// The lookup rule, separate for testing: full id, then name, then unique id prefix.
pub(crate) fn lookup_in(t: &ContainerTable, name: &str) -> Result<Arc<Container>> {
    if name.is_empty() {
        return Err(EngineError::no_such_container(name));
    }
    if let Some(c) = t.by_id.get(name) {
        return Ok(c.clone());
    }
    let with_slash = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    if let Some(id) = t.names.get(&with_slash) {
        if let Some(c) = t.by_id.get(id) {
            return Ok(c.clone());
        }
    }
    if name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = t.by_id.iter().filter(|(id, _)| id.starts_with(name));
        if let Some((_, c)) = hits.next() {
            if hits.next().is_some() {
                return Err(EngineError::invalid(format!(
                    "multiple IDs found with provided prefix: {name}; give more characters"
                )));
            }
            return Ok(c.clone());
        }
    }
    Err(EngineError::no_such_container(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> ContainerTable {
        let mut t = ContainerTable::default();
        for (id, name) in entries {
            let rec = ContainerRecord {
                id: id.to_string(),
                name: name.to_string(),
                ..Default::default()
            };
            t.by_id.insert(id.to_string(), Container::new(rec));
            t.names.insert(name.to_string(), id.to_string());
        }
        t
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let a = "abc1".repeat(16);
        let b = "abd2".repeat(16);
        let t = table(&[(&a, "/web"), (&b, "/db")]);
        assert_eq!(lookup_in(&t, &a).unwrap().id, a);
        assert_eq!(lookup_in(&t, "web").unwrap().id, a);
        assert_eq!(lookup_in(&t, "/db").unwrap().id, b);
        assert_eq!(lookup_in(&t, "abc").unwrap().id, a);
        let amb = lookup_in(&t, "ab").unwrap_err();
        assert_eq!(amb.kind, crate::ErrorKind::InvalidArgument);
        let nf = lookup_in(&t, "nope").unwrap_err();
        assert_eq!(nf.message, "No such container: nope");
        assert_eq!(
            lookup_in(&t, "").unwrap_err().kind,
            crate::ErrorKind::NotFound
        );
    }

    #[test]
    fn name_beats_prefix() {
        // A container named like another's id prefix is found by name (Docker's order).
        let a = "beef".repeat(16);
        let b = "cafe".repeat(16);
        let t = table(&[(&a, "/cafe"), (&b, "/other")]);
        assert_eq!(lookup_in(&t, "cafe").unwrap().id, a);
    }
}
