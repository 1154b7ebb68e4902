//! One layer of a pull: download (resuming a kept partial file), hash, decompress and unpack
//! at once, verify digest and diff ID, then commit blob and snapshot.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes};

use super::{StreamError, LAYER_ATTEMPTS};
use crate::digest::{ChainId, DiffId};
use crate::error::{io_err, ImageError};
use crate::manifest::Descriptor;
use crate::progress::{LayerStatus, PullEvent};
use crate::registry::{RegistryError, RepoAccess};
use crate::store::ImageStore;

impl ImageStore {
    /// Downloads and unpacks one layer, retrying and resuming after network failures.
    pub(super) async fn fetch_layer(
        &self,
        repo: &RepoAccess,
        desc: &Descriptor,
        diff_id: &DiffId,
        chain: &ChainId,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), ImageError> {
        let lock = self.blob_lock(&desc.digest);
        let _guard = lock.lock().await;
        let id = desc.digest.short().to_string();
        if self.snapshots.exists(chain) {
            progress(PullEvent::Layer {
                id,
                status: LayerStatus::AlreadyExists,
            });
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            match self.try_layer(repo, desc, diff_id, chain, progress).await {
                Ok(()) => return Ok(()),
                Err(ImageError::Interrupted { message, .. }) if attempt + 1 < LAYER_ATTEMPTS => {
                    tracing::info!(layer = %desc.digest, %message, attempt, "layer download interrupted; resuming");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_layer(
        &self,
        repo: &RepoAccess,
        desc: &Descriptor,
        diff_id: &DiffId,
        chain: &ChainId,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<(), ImageError> {
        let id = desc.digest.short().to_string();
        let want = u64::try_from(desc.size).map_err(|_| {
            ImageError::Invalid(format!("layer {} has a negative size", desc.digest))
        })?;
        let partial = self.ingest_path(&desc.digest);
        let blob = self.blob_path(&desc.digest);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(32);

        // A verified blob already here (its snapshot was removed): unpack it, no network.
        let (have, resp) = if blob.exists() {
            drop(tx);
            (None, None)
        } else {
            let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if have > want {
                let _ = std::fs::remove_file(&partial);
                have = 0;
            }
            let resp = match self.registry.blob(repo, &desc.digest, have).await {
                Ok(r) => r,
                Err(RegistryError::Connect { message, .. }) => {
                    return Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message,
                    })
                }
                Err(RegistryError::Status { status: 416, .. }) if have > 0 => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message: "registry refused the resume range".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if have > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                have = 0; // the registry ignored the Range: start over
            }
            (Some(have), Some((resp, tx)))
        };

        let snapshots = self.snapshots.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let failed2 = failed.clone();
        // compressed bytes the unpacker has consumed (the "Extracting" bar)
        let consumed = Arc::new(AtomicU64::new(0));
        let consumed2 = consumed.clone();
        let (d, diff, ch) = (desc.digest.clone(), diff_id.clone(), chain.clone());
        let (partial2, blob2) = (partial.clone(), blob.clone());
        let worker = tokio::task::spawn_blocking(move || -> Result<u64, ImageError> {
            let mut src: Box<dyn Read> = match have {
                None => Box::new(File::open(&blob2).map_err(io_err("open", &blob2))?),
                Some(have) => {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .read(true)
                        .write(true)
                        .open(&partial2)
                        .map_err(io_err("open", &partial2))?;
                    f.set_len(have).map_err(io_err("truncate", &partial2))?;
                    // a separate handle: a cloned fd would share the append offset
                    let existing = File::open(&partial2)
                        .map_err(io_err("open", &partial2))?
                        .take(have);
                    f.seek(io::SeekFrom::End(0))
                        .map_err(io_err("seek", &partial2))?;
                    Box::new(ChannelReader {
                        existing: Some(existing),
                        rx,
                        cur: Bytes::new(),
                        append: Some(f),
                        failed: failed.clone(),
                    })
                }
            };
            let mut counted = Counting {
                inner: &mut src,
                n: &consumed2,
            };
            let mut hashing = crate::unpack::HashingReader::new(&mut counted);
            let pending = snapshots.begin()?;
            let stats = match crate::unpack::unpack_layer(&mut hashing, &pending.fs()) {
                Ok(s) => s,
                Err(e) => {
                    let interrupted = |m: String| ImageError::Interrupted {
                        digest: d.clone(),
                        message: m,
                    };
                    if failed2.load(Ordering::Relaxed) {
                        return Err(interrupted(e.to_string()));
                    }
                    // read the rest to tell a truncated or corrupt blob from a bad tar
                    if let Err(de) = hashing.drain() {
                        if failed2.load(Ordering::Relaxed) {
                            return Err(interrupted(de.to_string()));
                        }
                    }
                    let (actual, got, _) = hashing.finish();
                    if got < want {
                        // keep the partial: a later pull resumes from it
                        return Err(ImageError::Truncated {
                            digest: d,
                            got,
                            want,
                        });
                    }
                    if got == want && actual != d {
                        let _ = std::fs::remove_file(&partial2);
                        if have != Some(0) {
                            // bytes from disk were bad: drop them and fetch again
                            if have.is_none() {
                                let _ = std::fs::remove_file(&blob2);
                            }
                            return Err(ImageError::Interrupted {
                                digest: d,
                                message: "stored bytes did not verify; fetching the layer again"
                                    .into(),
                            });
                        }
                        return Err(ImageError::DigestMismatch {
                            what: "layer".into(),
                            expected: d,
                            actual,
                        });
                    }
                    return Err(e.into());
                }
            };
            let (actual, got, _) = hashing.finish();
            drop(src);
            let e_digest = d.clone();
            // a bad result from bytes already on disk (a resumed partial or a stored blob)
            // is dropped and the layer fetched again from scratch
            let from_disk = have != Some(0);
            let fail = |e: ImageError| {
                let _ = std::fs::remove_file(&partial2);
                if have.is_none() {
                    let _ = std::fs::remove_file(&blob2);
                }
                if from_disk {
                    return Err(ImageError::Interrupted {
                        digest: e_digest.clone(),
                        message: format!("{e}; fetching the layer again"),
                    });
                }
                Err(e)
            };
            if got < want {
                // keep the partial: a later pull resumes from it
                return Err(ImageError::Truncated {
                    digest: d,
                    got,
                    want,
                });
            }
            if got > want {
                return fail(ImageError::Oversized { digest: d, want });
            }
            if actual != d {
                return fail(ImageError::DigestMismatch {
                    what: "layer".into(),
                    expected: d,
                    actual,
                });
            }
            if stats.diff_id != diff {
                return fail(ImageError::DigestMismatch {
                    what: "layer diff ID".into(),
                    expected: diff,
                    actual: stats.diff_id,
                });
            }
            if have.is_some() {
                // no fsync: every later read of a blob (unpack, save, push) re-verifies
                // its digest, so a blob torn by a crash is detected, not trusted
                std::fs::rename(&partial2, &blob2).map_err(io_err("rename", &blob2))?;
            }
            snapshots.commit(pending, &ch, stats.size)?;
            Ok(stats.size)
        });

        let mut net_error = None;
        let mut oversized = false;
        if let Some((mut resp, tx)) = resp {
            let mut current = have.unwrap_or(0);
            let mut last = 0u64;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        current += c.len() as u64;
                        if current > want {
                            // a registry streaming more than the descriptor says: stop
                            // before it fills the disk
                            oversized = true;
                            let _ = tx.send(Err("blob larger than its descriptor".into())).await;
                            break;
                        }
                        if tx.send(Ok(c)).await.is_err() {
                            break; // the unpacker stopped: its error tells why
                        }
                        if current - last >= 512 << 10 || current == want {
                            last = current;
                            progress(PullEvent::Layer {
                                id: id.clone(),
                                status: LayerStatus::Downloading {
                                    current,
                                    total: want,
                                },
                            });
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let m = crate::registry::error_chain(&e);
                        net_error = Some(m.clone());
                        let _ = tx.send(Err(m)).await;
                        break;
                    }
                }
            }
        }
        if net_error.is_none() && !oversized {
            progress(PullEvent::Layer {
                id: id.clone(),
                status: LayerStatus::VerifyingChecksum,
            });
            progress(PullEvent::Layer {
                id: id.clone(),
                status: LayerStatus::DownloadComplete,
            });
        }
        let mut worker = worker;
        let res = loop {
            tokio::select! {
                r = &mut worker => break r,
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                    let current = consumed.load(Ordering::Relaxed).min(want);
                    progress(PullEvent::Layer { id: id.clone(), status: LayerStatus::Extracting { current, total: want } });
                }
            }
        };
        let res = res.map_err(|e| ImageError::Invalid(format!("layer worker failed: {e}")))?;
        if oversized {
            let _ = std::fs::remove_file(&partial);
            return Err(ImageError::Oversized {
                digest: desc.digest.clone(),
                want,
            });
        }
        match res {
            Ok(_size) => {
                progress(PullEvent::Layer {
                    id: id.clone(),
                    status: LayerStatus::Extracting {
                        current: want,
                        total: want,
                    },
                });
                progress(PullEvent::Layer {
                    id,
                    status: LayerStatus::PullComplete,
                });
                Ok(())
            }
            Err(e @ ImageError::Interrupted { .. }) => Err(e),
            Err(e) => match net_error {
                Some(message) if !matches!(e, ImageError::DigestMismatch { .. }) => {
                    Err(ImageError::Interrupted {
                        digest: desc.digest.clone(),
                        message,
                    })
                }
                _ => Err(e),
            },
        }
    }
}

/// Counts bytes read into a shared counter.
struct Counting<'a, R> {
    inner: R,
    n: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

/// Bytes already in the partial file, then bytes from the network (each appended to the
/// partial file before the unpacker sees it, so an interrupted download resumes there).
struct ChannelReader {
    existing: Option<io::Take<File>>,
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
    append: Option<File>,
    /// Set when the network side failed (the error may reach the unpacker wrapped).
    failed: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &mut self.existing {
            let n = e.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.existing = None;
        }
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(m)) => {
                    self.failed.store(true, Ordering::Relaxed);
                    return Err(io::Error::other(StreamError(m)));
                }
                Some(Ok(b)) => {
                    if let Some(f) = &mut self.append {
                        f.write_all(&b)?;
                    }
                    self.cur = b;
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}
