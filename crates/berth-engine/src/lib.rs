//! # berth-engine: containers, images, volumes and events as services
//!
//! The daemon turns each HTTP request into one call on an [`Engine`]; the engine owns the
//! state on disk and talks to the pieces below it:
//!
//! - **berth-image** pulls images and prepares each container's overlay rootfs;
//! - **berth-shim** (a separate process per container, `berth shim ...`) creates the container
//!   through berth-runtime, holds its stdio, writes its json-file log and records its exit;
//!   it outlives the daemon, so a restarted engine *re-adopts* running containers;
//! - **berth-cgroups** gives stats and the freezer for pause;
//! - **berth-net** attaches the container to its networks (veth, address, published
//!   ports, embedded DNS) between the shim's create and `START`.
//!
//! Vocabulary:
//! - a [`ContainerSpec`] is what the caller asks for; a [`ContainerRecord`] is what the
//!   engine stores (`data_root/containers/<id>/config.json`, written atomically) and shows;
//! - the *bundle* (`exec_root/containers/<id>/bundle`: OCI `config.json` + `rootfs`) is what
//!   the runtime consumes; the shim's state dir is `exec_root/containers/<id>`.
//!
//! Lifecycle: `create` (record, name) → `start` (mount rootfs, write bundle, spawn shim,
//! `START`) → the monitor holds a `WAIT` on the shim → exit recorded → restart policy /
//! auto-remove → `remove` (unmount, delete record).
//!
//! Errors carry an [`ErrorKind`] the daemon maps to a status code, and Docker's message.
//!
//! ## Where things are
//! | file | concept |
//! |---|---|
//! | `create.rs` | image defaults merged into the spec, name reservation, volumes, rootfs |
//! | `start.rs` | the start path (phase timings at `RUST_LOG=berth_engine=debug`) |
//! | `monitor.rs` | one `WAIT` per running container; exit, `--rm`, restart policies |
//! | `lifecycle.rs` | stop (stop signal, timeout, SIGKILL), kill, restart, remove, rename, pause |
//! | `reconcile.rs` | open: records vs live shims (re-adopt) vs `exit.json` (repair) |
//! | `oci/` | container config → OCI spec: caps, Docker's seccomp profile, mounts, user, limits |
//! | `logs.rs`, `stats.rs`, `exec.rs`, `attach.rs` | streams |
//! | `exec_events.rs` | an exec's `exec_create`/`exec_start`/`exec_die` events, the end of its stream |
//! | `volumes.rs`, `images.rs`, `network.rs`, `system.rs`, `events.rs` | the other services |
//! | `init.rs` | `berth-init`, the `--init` PID 1 |
//! | `archive/` | `cp` (stat, tar out, extract in), `export`, `diff`: a private mount-ns view of the container's files |
//! | `health.rs` | healthchecks: the image's merged with the container's, the probe loop, `State.Health` |
//! | `import.rs` | `import` of an uploaded or fetched (URL) tarball, `--change`, `--message` |
//!
//! ## Crash safety
//! Every record write is temp + fsync + rename + directory fsync ([`store`]). Nothing is
//! trusted on open: a record saying "running" is believed only if its shim answers; a shim
//! that answers is adopted even if the record says otherwise (a crash between `START` and
//! the save). One unreadable record is logged and skipped, never fatal.
//!
//! ## Cost of a start (measured, `tests/root_engine.rs` `run_rm_timings`, release shim)
//! The engine's own share of `run --rm true` is a few milliseconds: overlay mount ~0.4 ms,
//! /etc files + OCI spec (seccomp profile parsed once per process) ~1 ms, loopback or veth
//! ~1-2 ms, the record fsync ~1.5 ms, exit + remove ~3 ms. The rest is the shim and the
//! runtime (spawn + create, `START`), measured separately by their crates.
//!
//! ```no_run
//! # async fn demo() -> berth_engine::Result<()> {
//! use berth_engine::{Engine, EngineConfig, ContainerSpec, WaitCondition};
//! let engine = Engine::open(EngineConfig::default()).await?;
//! let created = engine
//!     .create_container(ContainerSpec {
//!         image: "busybox".into(),
//!         cmd: Some(vec!["echo".into(), "hello".into()]),
//!         ..Default::default()
//!     })
//!     .await?;
//! let wait = engine.wait_container(&created.id, WaitCondition::NextExit).await?;
//! engine.start_container(&created.id).await?;
//! assert_eq!(wait.result().await.status_code, 0);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod archive;
pub mod attach;
pub mod config;
pub mod containers;
mod create;
mod engine;
pub mod error;
pub mod events;
pub mod exec;
mod exec_events;
pub mod explain;
pub mod health;
pub mod history;
pub mod images;
pub mod import;
mod lifecycle;
pub mod logs;
mod monitor;
pub mod names;
pub mod network;
pub mod oci;
pub mod options;
mod reconcile;
pub mod record;
mod shim_client;
pub mod spec;
mod start;
mod static_elf;
pub mod stats;
pub mod store;
pub mod system;
mod top;
pub mod volumes;
mod zygote;

pub use attach::{AttachIo, AttachStream};
pub use config::EngineConfig;
pub use containers::WaitHandle;
pub use engine::Engine;
pub use error::{EngineError, ErrorKind, Result};
pub use events::Event;
pub use exec::{ExecRecord, ExecSpec, ExecStartOptions};
pub use health::{Health, HealthCheck, HealthResult, HealthStatus};
pub use images::{
    ImageConfig, ImageDeleteItem, ImageDetails, ImageSummary, ProgressSender, PullProgress,
};
pub use lifecycle::parse_signal;
pub use logs::{LogEntry, LogOptions, LogReceiver, LogStreamKind};
pub use network::{Network, NetworkCreate};
pub use options::{
    AttachOptions, CreateResult, Filters, ListOptions, PruneReport, RemoveOptions, TopResult,
    WaitCondition, WaitResult,
};
pub use record::{
    ContainerRecord, ContainerState, ContainerStatus, ContainerSummary, MountPoint,
    NetworkEndpoint, PublishedPort,
};
pub use spec::{ContainerSpec, HostSpec, MountSpec, PortBinding, RestartPolicy, Ulimit};
pub use stats::{ContainerStats, StatsReceiver};
pub use system::{DiskUsage, SystemCounts};
pub use volumes::{Volume, VolumeSpec};

/// Compile-time check: every service future is `Send` (the daemon spawns them).
#[allow(dead_code)]
fn service_futures_are_send(e: Engine) {
    fn send<T: Send>(_: T) {}
    send(e.image_pull("x", None, None));
    send(e.create_container(ContainerSpec::default()));
    send(e.start_container("x"));
    send(e.stop_container("x", None, None));
    send(e.kill_container("x", None));
    send(e.restart_container("x", None));
    send(e.remove_container("x", RemoveOptions::default()));
    send(e.wait_container("x", WaitCondition::NextExit));
    send(e.attach_container("x", AttachOptions::default()));
    send(e.container_logs("x", LogOptions::default()));
    send(e.container_stats("x"));
    send(e.exec_start("x", ExecStartOptions::default()));
    send(e.volume_prune(Filters::new()));
    send(e.prune_containers(Filters::new()));
    send(e.system_df());
    send(e.image_remove("x", false, false));
    send(e.image_push("x", None));
    send(e.image_load(std::path::Path::new("x")));
    send(e.network_connect("x", "y"));
}
