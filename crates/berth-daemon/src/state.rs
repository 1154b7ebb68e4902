//! What every handler shares: the engine and facts fixed at start.

use std::path::PathBuf;
use std::sync::Arc;

use berth_engine::Engine;

use crate::host::HostFacts;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub inner: Arc<Fixed>,
}

/// Set once at start.
#[derive(Debug)]
pub struct Fixed {
    pub host: HostFacts,
    pub engine_id: String,
    pub data_root: PathBuf,
    pub insecure_registries: Vec<String>,
}
