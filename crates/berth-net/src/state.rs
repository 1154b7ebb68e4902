//! Persistent state: networks and endpoints (which are also the IPAM leases), one JSON
//! file written atomically (temp file + fsync + rename + fsync of the directory), so a
//! crash leaves either the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::model::{Endpoint, Network};

/// File name inside the state directory.
pub const STATE_FILE: &str = "networks.json";

/// Everything berth-net persists.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// By network id.
    pub networks: BTreeMap<String, Network>,
    /// By endpoint id. An endpoint holds its IP lease.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The firewall backend (`nftables`/`iptables`) the rules were last installed with, so
    /// a switch of backend removes the old backend's rules.
    #[serde(default)]
    pub firewall: Option<String>,
}

impl State {
    /// Load, or an empty state when the file does not exist yet.
    pub fn load(path: &Path) -> Result<State> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NetError::State {
                path: path.to_path_buf(),
                msg: format!("not valid JSON: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(NetError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Write atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| NetError::State {
            path: path.to_path_buf(),
            msg: format!("cannot serialize: {e}"),
        })?;
        write_atomic(path, &bytes)
    }

    /// Write atomically but without waiting for the disk: temp file + rename. A crash of
    /// the process leaves the old or the new file; call [`sync`] (in the background) for
    /// durability against power loss. fsync costs ~5-10 ms on this disk, which is more
    /// than the whole network setup budget, so the hot path (attach/release) uses this.
    pub fn save_unsynced(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| NetError::State {
            path: path.to_path_buf(),
            msg: format!("cannot serialize: {e}"),
        })?;
        berth_sys::file::write_replace(path, &bytes, 0o644, false)
            .map_err(|e| NetError::io(format!("write {}", path.display()), e))
    }

    /// Resolve a network by exact id, exact name, then unique id prefix (Docker's order).
    pub fn find_network(&self, key: &str) -> Result<&Network> {
        if let Some(n) = self.networks.get(key) {
            return Ok(n);
        }
        if let Some(n) = self.networks.values().find(|n| n.name == key) {
            return Ok(n);
        }
        let mut by_prefix = self
            .networks
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(n),
            _ => Err(NetError::NetworkNotFound(key.to_string())),
        }
    }

    /// Endpoints on one network.
    pub fn endpoints_on<'a>(
        &'a self,
        network_id: &'a str,
    ) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints
            .values()
            .filter(move |e| e.network_id == network_id)
    }

    /// Endpoints of one container.
    pub fn endpoints_of<'a>(
        &'a self,
        container_id: &'a str,
    ) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.endpoints
            .values()
            .filter(move |e| e.container_id == container_id)
    }
}

/// fsync the file and its directory (makes an earlier `save_unsynced` durable).
pub fn sync(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .and_then(|()| fs::File::open(dir)?.sync_all())
        .map_err(|e| NetError::io(format!("fsync {}", path.display()), e))
}

/// temp + fsync + rename + fsync(dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    berth_sys::file::write_atomic(path, bytes, 0o644)
        .map_err(|e| NetError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("berth-net-state-{}", std::process::id()));
        let p = dir.join(STATE_FILE);
        let _ = fs::remove_file(&p);
        assert!(State::load(&p).unwrap().networks.is_empty());
        let s = State::default();
        s.save(&p).unwrap();
        assert!(State::load(&p).unwrap().endpoints.is_empty());
        fs::write(&p, b"{not json").unwrap();
        assert!(matches!(State::load(&p), Err(NetError::State { .. })));
        let _ = fs::remove_dir_all(&dir);
    }
}
