//! # berth-runtime: berth's own OCI runtime
//!
//! A *container* is an ordinary Linux process (the *init*) started in new namespaces (mount,
//! pid, net, ipc, uts, cgroup, user, time), limited by a cgroup, with its root switched to a
//! *bundle*'s rootfs by `pivot_root`, stripped of capabilities and fenced by seccomp. The
//! *bundle* is a directory with `config.json` (the OCI runtime spec, as `runc spec` writes
//! it) and usually `rootfs/`.
//!
//! Lifecycle (OCI): `create` sets everything up and leaves the init blocked just before
//! `execve` (status `created`); `start` releases it (`running`); the process exits
//! (`stopped`); `delete` removes what is left (cgroups, state). `kill`, `pause`/`resume`
//! (cgroup freezer), `ps` and `exec` (a second process inside the same namespaces) work in
//! between. State lives in `<root>/<id>/state.json`; the init waits on `<root>/<id>/exec.fifo`
//! until `start` opens it (runc's exec-fifo model), so create and start may run in
//! different processes.
//!
//! The init is created as a **child of the caller** (a helper forks, joins namespaces given
//! by path, and clones the init with `CLONE_PARENT` and every `CLONE_NEW*` flag at once), so
//! an in-process caller such as the shim can `waitpid` it and collect its exit status.
//! `exec` processes are children of the caller in the same way.
//!
//! ```no_run
//! use berth_runtime::{CreateOptions, Runtime};
//! # fn main() -> Result<(), berth_runtime::Error> {
//! let rt = Runtime::new("/run/berth/runtime");
//! // /tmp/bundle holds config.json (from `berth runtime spec`) and rootfs/.
//! let created = rt.create("web", "/tmp/bundle".as_ref(), CreateOptions::default())?;
//! rt.start("web")?;                      // the init execs process.args now
//! println!("{:?}", rt.state("web")?.status); // Running
//! let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None);
//! rt.delete("web", false)?;              // cgroups and state dir are gone
//! # let _ = status; Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod capabilities;
mod cgroup;
pub mod cli;
mod container;
mod devices;
mod error;
mod exec;
mod hooks;
mod init;
mod lifecycle;
mod mount_opts;
mod namespaces;
mod process;
mod rootfs;
mod seccomp;
mod seccomp_bpf;
mod spec;
mod state;
mod sync;
mod timing;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use error::{Error, ErrorKind, Result};
pub use state::{State, Status};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth/runtime";

/// Where the container's terminal (when `process.terminal` is true) goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConsoleMode {
    /// No terminal: `process.terminal: true` is then an error.
    #[default]
    None,
    /// runc's protocol: connect to this unix socket and send the pty master with SCM_RIGHTS.
    Socket(PathBuf),
    /// Return the pty master in [`Created::console_master`] (in-process callers).
    ReturnMaster,
}

/// Options of [`Runtime::create`].
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The container's stdio; `None` inherits the caller's.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub console: ConsoleMode,
    /// Write the init's pid here (atomically) once created.
    pub pid_file: Option<PathBuf>,
    /// Called with the init's pid as soon as it is cloned, before it sets up its mounts: a
    /// caller can prepare the network namespace meanwhile (the engine's network step runs in
    /// parallel with the rest of create this way).
    pub on_pid: Option<PidCallback>,
}

/// See [`CreateOptions::on_pid`].
pub struct PidCallback(pub Box<dyn FnMut(i32) + Send>);

impl std::fmt::Debug for PidCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PidCallback")
    }
}

/// Options of [`Runtime::exec`].
pub type ExecOptions = CreateOptions;

/// The process just created (the init, or an exec'd process).
#[derive(Debug)]
pub struct Created {
    /// Pid in the caller's pid namespace; the process is a child of the caller.
    pub pid: i32,
    /// The terminal master when [`ConsoleMode::ReturnMaster`] was asked for.
    pub console_master: Option<OwnedFd>,
    /// How long each step took, in order, microseconds (the engine's start timeline).
    pub phases: Vec<(String, u64)>,
    /// The container's cgroup (as in `linux.cgroupsPath` after berth's defaults) for a
    /// create; `None` for an exec.
    pub cgroup_path: Option<String>,
}

/// The runtime: a state directory holding one subdirectory per container.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new(DEFAULT_ROOT)
    }
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime { root: root.into() }
    }

    /// Create container `id` from `bundle`: namespaces, cgroups, rootfs, user, caps, seccomp
    /// are all set up; the init blocks before `execve` until [`Runtime::start`]. On any error
    /// nothing is left behind (no process, cgroup or state directory).
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Created> {
        container::create(self, id, bundle, opts)
    }

    /// Release the init of a `created` container: it execs `process.args`.
    pub fn start(&self, id: &str) -> Result<()> {
        lifecycle::start(self, id)
    }

    /// OCI state of `id`.
    pub fn state(&self, id: &str) -> Result<State> {
        lifecycle::state(self, id)
    }

    /// Send `signal` to the init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        lifecycle::kill(self, id, signal, all)
    }

    /// Remove a stopped (or created) container: cgroups, state directory, poststop hooks.
    /// `force` kills a running or paused one first (thawing it, since a frozen task ignores
    /// SIGKILL).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        lifecycle::delete(self, id, force)
    }

    /// Freeze every process of the container (cgroup freezer).
    pub fn pause(&self, id: &str) -> Result<()> {
        lifecycle::pause(self, id, true)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        lifecycle::pause(self, id, false)
    }

    /// Every container under this root.
    pub fn list(&self) -> Result<Vec<State>> {
        lifecycle::list(self)
    }

    /// Pids (host view) of the container's processes.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        lifecycle::ps(self, id)
    }

    /// Run `process` inside the running container `id`: joins its namespaces and cgroups,
    /// applies the process's user, capabilities, no_new_privileges, rlimits and the
    /// container's seccomp profile. The process is a child of the caller and has already
    /// exec'd when this returns.
    pub fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        opts: ExecOptions,
    ) -> Result<Created> {
        exec::exec(self, id, process, opts)
    }
}

/// Pure helpers exposed for tests and the engine.
pub mod util {
    /// A default `config.json` like `runc spec` writes (rootfs `rootfs`, `sh`, read-only root).
    pub fn default_spec_json() -> String {
        crate::cli::default_spec()
    }
}
