//! Files in and out of containers: `docker cp` (stat, archive, extract), `docker export`,
//! `docker diff`.
//!
//! All of them work on running, stopped and never-started containers alike: the operation
//! runs on a thread in a private mount namespace holding the container's rootfs (mounted
//! for it when the container is not running) and its volumes ([`view`]); paths are resolved
//! with the container's root as `/` ([`resolve`]); archives are written and read through
//! directory file descriptors, never joined host paths ([`pack`], [`extract`]). A tar
//! streams out through a channel while it is written, and a tar uploaded by a client is
//! extracted as it arrives.
//!
//! Docker's messages: `Could not find the file /x in container c` (404), `extraction point
//! is not a directory`, `container rootfs is marked read-only`, `mounted volume is marked
//! read-only` (400).

mod changes;
mod compression;
mod extract;
mod pack;
mod resolve;
mod view;
mod walk;

pub use changes::{Change, ChangeKind};
pub use compression::DecodeError;
pub use extract::{ExtractError, ExtractOptions};
pub use resolve::{PathStat, GO_MODE_DIR, GO_MODE_SYMLINK};

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustix::fs::{FileType, OFlags};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Container;
use crate::error::{EngineError, ErrorKind, Result};
use crate::Engine;
use view::{ViewMount, ViewPlan};

/// Chunks of a tar stream (out of `archive_get` / `export`, or into `archive_put`).
pub type ArchiveReceiver = mpsc::Receiver<io::Result<Vec<u8>>>;
/// The sending side, for a caller feeding `archive_put`.
pub type ArchiveSender = mpsc::Sender<io::Result<Vec<u8>>>;

/// A channel for a tar stream.
pub fn archive_channel() -> (ArchiveSender, ArchiveReceiver) {
    mpsc::channel(16)
}

/// `PUT /containers/{id}/archive` query options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Refuse to replace a directory with a non-directory and vice versa.
    pub no_overwrite_dir_non_dir: bool,
    /// Own every extracted entry by the container's configured user (`docker cp -a`); with
    /// no user configured, or without this, the tar's own uid/gid are kept (moby).
    pub copy_uid_gid: bool,
}

/// A `Write` that sends 64 KiB chunks down a channel (the view's thread is not a runtime
/// thread, so it may block on a slow reader).
struct ChannelWriter {
    tx: ArchiveSender,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

/// A `Read` over a channel of chunks.
struct ChannelReader {
    rx: ArchiveReceiver,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn not_found(path: &str, name: &str) -> EngineError {
    EngineError::not_found(format!(
        "Could not find the file {path} in container {name}"
    ))
}

/// An I/O error on `path` in Docker's terms.
fn path_error(e: &io::Error, path: &str, name: &str) -> EngineError {
    if e.kind() == io::ErrorKind::NotFound {
        not_found(path, name)
    } else {
        EngineError::internal(format!("{path}: {e}"))
    }
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(EngineError::invalid("bad parameter: path cannot be empty"));
    }
    Ok(())
}

/// The mount (volume or bind) that holds the container path `abs`, the deepest one.
fn mount_of<'a>(mounts: &'a [ViewMount], abs: &str) -> Option<&'a ViewMount> {
    mounts
        .iter()
        .filter(|m| {
            let d = m.destination.trim_end_matches('/');
            abs == d || d.is_empty() || abs.strip_prefix(d).is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|m| m.destination.len())
}

fn view_failed(e: io::Error) -> EngineError {
    EngineError::internal(format!("open the container's filesystem: {e}"))
}

fn thread_gone() -> EngineError {
    EngineError::internal("the container filesystem operation ended without a result")
}

impl Engine {
    /// The view of a container: its rootfs (mounted for the view unless it is already) and,
    /// with `volumes`, its volumes, binds and /etc files.
    fn view_plan(&self, c: &Container, volumes: bool) -> Result<ViewPlan> {
        let rec = c.snapshot();
        if rec.state.status == crate::ContainerStatus::Removing {
            return Err(EngineError::conflict(format!(
                "container {} is being removed",
                rec.id
            )));
        }
        let rootfs = self.rootfs_dir(&rec.id);
        let overlay = if crate::start::is_mountpoint(&rootfs) {
            None
        } else {
            Some(crate::start::rootfs_mount_of(&rec)?)
        };
        let mut mounts = Vec::new();
        if volumes {
            for m in rec
                .mounts
                .iter()
                .filter(|m| m.kind == "bind" || m.kind == "volume")
            {
                mounts.push(ViewMount {
                    source: m.source.clone().into(),
                    destination: m.destination.clone(),
                    rw: m.rw,
                });
            }
            for (src, dest) in [
                (&rec.hosts_path, "/etc/hosts"),
                (&rec.hostname_path, "/etc/hostname"),
                (&rec.resolv_conf_path, "/etc/resolv.conf"),
            ] {
                if !src.is_empty()
                    && std::path::Path::new(src).is_file()
                    && !mounts.iter().any(|m| m.destination == dest)
                {
                    mounts.push(ViewMount {
                        source: src.into(),
                        destination: dest.to_string(),
                        rw: !rec.config.host.read_only_rootfs,
                    });
                }
            }
        }
        Ok(ViewPlan {
            rootfs,
            overlay,
            mounts,
        })
    }

    /// Runs `f` in the container's view; returns once the view is set up (holding the
    /// container's lifecycle lock until then, so no start or removal races the mount).
    async fn in_view<T: Send + 'static>(
        &self,
        c: &Arc<Container>,
        volumes: bool,
        f: impl FnOnce(&view::View) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>> {
        let _g = c.lifecycle.lock().await;
        let plan = self.view_plan(c, volumes)?;
        let (ready, done) = view::spawn(plan, f);
        ready
            .await
            .map_err(|_| thread_gone())?
            .map_err(view_failed)?;
        Ok(done)
    }

    /// `HEAD /containers/{id}/archive`: stat a path in the container.
    pub async fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        check_path(path)?;
        let c = self.lookup(name)?;
        let p = path.to_string();
        let done = self
            .in_view(&c, true, move |v| resolve::stat(&v.root, &p))
            .await?;
        done.await
            .map_err(|_| thread_gone())?
            .map_err(|e| path_error(&e, path, name))
    }

    /// `GET /containers/{id}/archive`: the path's stat and a tar of it, streamed while it is
    /// written (entries named as Docker names them: `etc/`, `etc/passwd`).
    pub async fn archive_get(&self, name: &str, path: &str) -> Result<(PathStat, ArchiveReceiver)> {
        check_path(path)?;
        let c = self.lookup(name)?;
        let (tx, rx) = archive_channel();
        let (stat_tx, stat_rx) = oneshot::channel::<io::Result<PathStat>>();
        let p = path.to_string();
        let _done = self
            .in_view(&c, true, move |v| {
                let st = match resolve::stat(&v.root, &p) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = stat_tx.send(Err(e));
                        return;
                    }
                };
                let rebase = st.name.clone();
                let _ = stat_tx.send(Ok(st));
                let w = ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(CHUNK),
                };
                match pack::pack(&v.root, &p, &rebase, w, pack::PackOptions::default()) {
                    Ok(mut w) => {
                        if let Err(e) = w.flush() {
                            let _ = tx.blocking_send(Err(e));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(path = %p, "archive: {e}");
                        let _ = tx.blocking_send(Err(e));
                    }
                }
            })
            .await?;
        let st = stat_rx
            .await
            .map_err(|_| thread_gone())?
            .map_err(|e| path_error(&e, path, name))?;
        self.emit_container(&c, "archive-path", &[]);
        Ok((st, rx))
    }

    /// `PUT /containers/{id}/archive`: extract the tar coming down `body` into the directory
    /// `path` of the container.
    pub async fn archive_put(
        &self,
        name: &str,
        path: &str,
        opts: PutOptions,
        body: ArchiveReceiver,
    ) -> Result<()> {
        check_path(path)?;
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        let read_only_rootfs = rec.config.host.read_only_rootfs;
        let user = rec.config.user.clone().unwrap_or_default();
        let (p, n) = (path.to_string(), name.to_string());
        // The whole extraction under the lifecycle lock, as Docker holds the container's.
        let _g = c.lifecycle.lock().await;
        let plan = self.view_plan(&c, true)?;
        let mounts = plan.mounts.clone();
        let (ready, done) = view::spawn(plan, move |v| -> Result<u64> {
            let dest = resolve::open(&v.root, &resolve::rel(&p), OFlags::PATH | OFlags::DIRECTORY)
                .map_err(|e| match e.raw_os_error() {
                    Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
                        EngineError::invalid("extraction point is not a directory")
                    }
                    _ => path_error(&e, &p, &n),
                })?;
            let st = rustix::fs::fstat(&dest).map_err(|e| path_error(&e.into(), &p, &n))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(EngineError::invalid("extraction point is not a directory"));
            }
            let abs = resolve::follow_in_scope(&v.root, &p).map_err(|e| path_error(&e, &p, &n))?;
            match mount_of(&mounts, &abs) {
                Some(m) if !m.rw => {
                    return Err(EngineError::invalid("mounted volume is marked read-only"))
                }
                None if read_only_rootfs => {
                    return Err(EngineError::invalid("container rootfs is marked read-only"))
                }
                _ => {}
            }
            // moby's tarCopyOptions: no user configured, the tar's own ids are kept.
            let chown = if opts.copy_uid_gid && !user.is_empty() {
                let u =
                    crate::oci::user::resolve(&user, &v.rootfs).map_err(EngineError::invalid)?;
                Some((u.uid, u.gid))
            } else {
                None
            };
            let xo = ExtractOptions {
                no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
                chown,
            };
            let reader = ChannelReader {
                rx: body,
                cur: Vec::new(),
                pos: 0,
            };
            extract::extract(&dest, reader, &xo).map_err(|e| match e {
                ExtractError::Io { .. } => EngineError::internal(e.to_string()),
                _ => EngineError::invalid(e.to_string()),
            })
        });
        ready
            .await
            .map_err(|_| thread_gone())?
            .map_err(view_failed)?;
        let n = done.await.map_err(|_| thread_gone())??;
        tracing::debug!(container = %c.id, entries = n, "extracted an archive");
        self.emit_container(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// `GET /containers/{id}/export`: a tar of the container's whole root filesystem, without
    /// what is mounted on it (volumes, binds), entries named `bin/`, `bin/sh`.
    pub async fn export_container(&self, name: &str) -> Result<ArchiveReceiver> {
        let c = self.lookup(name)?;
        let (tx, rx) = archive_channel();
        let _done = self
            .in_view(&c, false, move |v| {
                let w = ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::with_capacity(CHUNK),
                };
                let opts = pack::PackOptions {
                    one_filesystem: true,
                    skip_top: true,
                };
                match pack::pack(&v.root, "/", "", w, opts) {
                    Ok(mut w) => {
                        if let Err(e) = w.flush() {
                            let _ = tx.blocking_send(Err(e));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("export: {e}");
                        let _ = tx.blocking_send(Err(e));
                    }
                }
            })
            .await?;
        self.emit_container(&c, "export", &[]);
        Ok(rx)
    }

    /// `GET /containers/{id}/changes`: what the container changed in its root filesystem.
    pub async fn container_changes(&self, name: &str) -> Result<Vec<Change>> {
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        let m = crate::start::rootfs_mount_of(&rec)?;
        tokio::task::spawn_blocking(move || changes::changes(&m.upper, &m.lowerdirs))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| EngineError::new(ErrorKind::Internal, format!("container changes: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_lookup_is_by_path_component() {
        let m = |d: &str, rw| ViewMount {
            source: "/x".into(),
            destination: d.into(),
            rw,
        };
        let ms = vec![
            m("/data", false),
            m("/data/rw", true),
            m("/etc/hosts", true),
        ];
        assert!(!mount_of(&ms, "/data/x").unwrap().rw);
        assert!(mount_of(&ms, "/data/rw/y").unwrap().rw);
        assert!(mount_of(&ms, "/data2").is_none());
        assert!(mount_of(&ms, "/etc").is_none());
        assert_eq!(mount_of(&ms, "/data").unwrap().destination, "/data");
    }

    #[test]
    fn channel_writer_and_reader_round_trip() {
        let (tx, rx) = archive_channel();
        let t = std::thread::spawn(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::new(),
            };
            for i in 0..100_000u32 {
                w.write_all(&i.to_le_bytes()).unwrap();
            }
            w.flush().unwrap();
        });
        let mut r = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        t.join().unwrap();
        assert_eq!(all.len(), 400_000);
        assert_eq!(&all[4..8], &1u32.to_le_bytes());
    }
}
