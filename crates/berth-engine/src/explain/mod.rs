//! `explain`: how one container works under the hood, read back from the kernel.
//!
//! A container is not a thing the kernel knows: it is an ordinary process that was given
//! its own *namespaces* (what it can see), *cgroups* (what it can use), a *root filesystem*
//! (an overlay of the image's layers plus a writable upper dir), a *network* (a veth pair
//! into a bridge, NAT rules for published ports) and a *security* profile (capabilities,
//! seccomp, no_new_privs, masked paths). [`Engine::explain_container`] gathers each of
//! these facts from where the kernel exposes it, one file per area:
//!
//! | area | where the fact comes from |
//! |---|---|
//! | [`process`] | `/proc/<pid>/status` (`NSpid`), `cmdline`, `uid_map`/`gid_map`, the shim PID in the record |
//! | [`namespaces`] | `readlink /proc/<pid>/ns/*` compared with `/proc/1/ns/*` (the host's) |
//! | [`cgroups`] | `/proc/<pid>/cgroup` + the limit/usage files in each hierarchy |
//! | [`filesystem`] | `/proc/<pid>/mountinfo`, the image's layers (lowerdir → chain id) |
//! | [`network`] | berth-net's endpoints (veth names + ifindexes) and our nft table |
//! | [`security`] | `/proc/<pid>/status` (CapEff, CapBnd, Seccomp, NoNewPrivs), the bundle's OCI spec |
//! | [`timeline`] | steps the engine measured while it created and started the container |
//!
//! Truthfulness: a stopped container has no process, namespaces, cgroup or network; its
//! explanation says so and shows only what is still true (its stored layers and the
//! timeline of its last start). When the container stops while we read, we start over
//! with the stopped view instead of returning half of each.

pub mod cgroups;
pub mod filesystem;
pub mod namespaces;
pub mod network;
pub mod process;
pub mod security;
pub mod timeline;

use crate::error::{EngineError, Result};
use crate::record::ContainerRecord;
use crate::Engine;
use serde::{Deserialize, Serialize};

pub use cgroups::{CgroupFacts, CgroupHierarchy, CgroupLimit};
pub use filesystem::{FilesystemFacts, LayerFacts, MountFacts, OverlayFacts};
pub use namespaces::NamespaceFacts;
pub use network::{NetworkFacts, NetworkInterface, PortFacts};
pub use process::ProcessFacts;
pub use security::SecurityFacts;
pub use timeline::{StartTimeline, TimelineStep};

/// Everything `berth explain` shows about one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Explanation {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The image as the user gave it, and its id.
    pub image: String,
    pub image_id: String,
    /// Docker's status word (`running`, `exited`, ...).
    pub status: String,
    pub running: bool,
    /// Why some sections are empty (e.g. the container is not running).
    pub note: String,
    pub process: Option<ProcessFacts>,
    pub namespaces: Vec<NamespaceFacts>,
    pub cgroups: Option<CgroupFacts>,
    pub filesystem: FilesystemFacts,
    pub network: Option<NetworkFacts>,
    pub security: Option<SecurityFacts>,
    /// The last start, as measured while it happened.
    pub timeline: Option<StartTimeline>,
}

/// A read of a kernel fact failed because the process went away (the container stopped).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("the container's process {0} is gone")]
    ProcessGone(i32),
    #[error("read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ExplainError {
    /// Wrap a failed read of `path`; ENOENT/ESRCH under `/proc/<pid>` means the process left.
    pub(crate) fn read(pid: i32, path: impl Into<String>, source: std::io::Error) -> Self {
        let path = path.into();
        let gone = matches!(
            source.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::ESRCH)
        ) && path.starts_with(&format!("/proc/{pid}/"));
        if gone {
            ExplainError::ProcessGone(pid)
        } else {
            ExplainError::Read { path, source }
        }
    }
}

/// Read a `/proc/<pid>/...` file, mapping a vanished process to [`ExplainError::ProcessGone`].
pub(crate) fn read_proc(pid: i32, rel: &str) -> std::result::Result<String, ExplainError> {
    let path = format!("/proc/{pid}/{rel}");
    std::fs::read_to_string(&path).map_err(|e| ExplainError::read(pid, path, e))
}

impl Engine {
    /// Explain a container: `NotFound` for an unknown one; a stopped one gets the
    /// stopped view (see the module doc).
    pub async fn explain_container(&self, name: &str) -> Result<Explanation> {
        let c = self.lookup(name)?;
        // Two tries: a container that stops (or restarts) while we read is read again.
        for _ in 0..2 {
            let rec = c.snapshot();
            let mut ex = self.stopped_view(&rec);
            if !rec.state.running || rec.state.pid <= 0 {
                return Ok(ex);
            }
            match self.running_facts(&rec, &mut ex).await {
                Ok(()) => {
                    // Still the same process? Otherwise the facts may mix two lives.
                    let now = c.snapshot();
                    if now.state.running
                        && now.state.pid == rec.state.pid
                        && std::path::Path::new(&format!("/proc/{}", rec.state.pid)).exists()
                    {
                        return Ok(ex);
                    }
                }
                Err(ExplainError::ProcessGone(_)) => {}
                Err(e) => return Err(EngineError::internal(format!("explain: {e}"))),
            }
            // The process left under us: wait a moment for the monitor to record the exit.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let rec = c.snapshot();
        let mut ex = self.stopped_view(&rec);
        if rec.state.running {
            ex.note = "the container's process is exiting; run explain again".into();
        }
        Ok(ex)
    }

    /// What is true of any container, running or not.
    fn stopped_view(&self, rec: &ContainerRecord) -> Explanation {
        let note = if rec.state.running {
            String::new()
        } else {
            let how = match rec.state.status {
                crate::ContainerStatus::Created => "it was created but never started".to_string(),
                _ => format!("it exited with code {}", rec.state.exit_code),
            };
            format!(
                "container {} is not running ({how}): it has no process, namespaces, cgroup or \
                 network now; shown are its stored image layers and the timeline of its last start. \
                 Start it with berth start {}",
                rec.bare_name(),
                rec.bare_name()
            )
        };
        Explanation {
            id: rec.id.clone(),
            name: rec.bare_name().to_string(),
            image: rec.config.image.clone(),
            image_id: rec.image_id.clone(),
            status: rec.state.status.as_str().to_string(),
            running: rec.state.running,
            note,
            filesystem: filesystem::stored(self, rec),
            timeline: self.last_timeline(&rec.id),
            ..Default::default()
        }
    }

    async fn running_facts(
        &self,
        rec: &ContainerRecord,
        ex: &mut Explanation,
    ) -> std::result::Result<(), ExplainError> {
        // Plain file reads under /proc and /sys: off the async workers.
        let (engine, r) = (self.clone(), rec.clone());
        let facts = tokio::task::spawn_blocking(move || {
            let spec = security::bundle_spec(&engine.bundle_dir(&r.id));
            Ok::<_, ExplainError>((
                process::collect(&r)?,
                namespaces::collect(r.state.pid)?,
                cgroups::collect(&r)?,
                filesystem::collect(&engine, &r, spec.as_ref())?,
                security::collect(&r, spec.as_ref())?,
            ))
        })
        .await
        .map_err(|e| ExplainError::Read {
            path: "the explain task".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let (process, namespaces, cgroups, filesystem, security) = facts;
        ex.network = network::collect(self, rec, &namespaces).await?;
        ex.process = Some(process);
        ex.namespaces = namespaces;
        ex.cgroups = Some(cgroups);
        ex.filesystem = filesystem;
        ex.security = Some(security);
        Ok(())
    }
}
