//! Listening: the unix socket (mode 0660, group `berth` when it exists), the pidfile, and
//! the outer router that carries the version-prefix layer.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::Router;
use tokio::net::UnixListener;

use crate::prefix;
use crate::routes;
use crate::state::AppState;

/// Why the daemon could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("another berth daemon is already listening on {0}: stop it first or choose another socket with -H")]
    InUse(PathBuf),
    #[error("cannot bind {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("berth daemon is already running with pid {pid} (pidfile {path}): stop it first")]
    AlreadyRunning { pid: i32, path: PathBuf },
    #[error("cannot write pidfile {path}: {source}")]
    Pidfile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The whole application: routes wrapped by the prefix/headers middleware.
pub fn app(state: AppState) -> Router {
    Router::new()
        .fallback_service(routes::router(state))
        .layer(axum::middleware::from_fn(prefix::version_prefix))
        .layer(axum::middleware::from_fn(crate::idle::track))
}

/// Binds `path`: a stale socket file is replaced, a live one is an error.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Bind {
            path: path.into(),
            source,
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::InUse(path.into()));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|source| ServeError::Bind {
        path: path.into(),
        source,
    })?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
    if let Some(gid) = group_id("berth") {
        let _ = std::os::unix::fs::chown(path, Some(0), Some(gid));
    }
    Ok(l)
}

/// The gid of `name` from /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? == name {
            f.nth(1)?.parse().ok()
        } else {
            None
        }
    })
}

/// A pidfile removed on drop.
#[derive(Debug)]
pub struct Pidfile(PathBuf);

impl Pidfile {
    pub fn create(path: &Path) -> Result<Pidfile, ServeError> {
        if let Ok(old) = std::fs::read_to_string(path) {
            if let Ok(pid) = old.trim().parse::<i32>() {
                let alive = Path::new(&format!("/proc/{pid}")).exists()
                    && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| c.contains("berth") && c.contains("daemon"));
                if alive && pid != std::process::id() as i32 {
                    return Err(ServeError::AlreadyRunning {
                        pid,
                        path: path.into(),
                    });
                }
            }
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let pid = format!("{}\n", std::process::id());
        berth_sys::file::write_replace(path, pid.as_bytes(), 0o644, false).map_err(|source| {
            ServeError::Pidfile {
                path: path.into(),
                source,
            }
        })?;
        Ok(Pidfile(path.into()))
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves until SIGTERM or SIGINT. Open streams (`events`, `logs -f`, `stats`, attach)
/// get [`SHUTDOWN_GRACE`] to finish, then the daemon exits anyway: containers keep running
/// under their shims and a restarted daemon re-adopts them.
pub async fn serve(listener: UnixListener, state: AppState) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: containers keep running under their shims");
        let _ = stopping_tx.send(());
    };
    let engine = state.engine.clone();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown);
    let grace = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("streams still open after {SHUTDOWN_GRACE:?}: closing them");
        } else {
            std::future::pending::<()>().await;
        }
    };
    let r = tokio::select! {
        r = server => r,
        _ = grace => Ok(()),
    };
    // Removed `--rm` containers whose files are still being deleted.
    engine.settle().await;
    // Monitors and health probes end here (a probe in flight is killed by its guard); the
    // containers keep running in their shims for the next daemon.
    engine.shutdown();
    r
}

/// How long open connections may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
