//! A request body read to its end before the work it feeds starts.
//!
//! Why: `PUT /containers/{id}/archive` extracts under the container's lifecycle lock (the
//! engine holds it so a `start`, `stop` or `rm` does not race the extraction). Fed straight
//! from the socket, a client that stops sending mid-body (a stalled `docker cp`, a dead peer
//! that never closes) would hold that lock for as long as it stalls, and `docker stop` or
//! `docker rm -f` of the container would wait behind it. (dockerd has the same wait: its
//! `containerExtractToDir` holds `container.Lock()` while it reads the client's body, and
//! stop and inspect take that lock too. berth does better on purpose.) Reading the whole
//! body first moves the stall out of the lock: the extraction then reads local data only.
//!
//! Small bodies stay in memory; past [`IN_MEMORY`] bytes the body goes to an anonymous
//! temporary file under the daemon's data root (unlinked: a crash leaves nothing behind).

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Body;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Bytes kept in memory before the body spills to a file.
pub const IN_MEMORY: usize = 1 << 20;
/// The size of the chunks [`Spool::feed`] sends.
const CHUNK: usize = 64 << 10;

/// Why a body could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("spooling the request body under {dir}: {source}; check the data root's free space")]
    File {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// A whole request body.
#[derive(Debug)]
pub enum Spool {
    Memory(Vec<u8>),
    File { file: tokio::fs::File, len: u64 },
}

impl Spool {
    /// Reads `body` to its end; past [`IN_MEMORY`] bytes into a temporary file in `dir`.
    pub async fn read(body: Body, dir: &Path) -> Result<Spool, SpoolError> {
        Self::read_with_limit(body, dir, IN_MEMORY).await
    }

    async fn read_with_limit(body: Body, dir: &Path, limit: usize) -> Result<Spool, SpoolError> {
        let file_err = |source| SpoolError::File {
            dir: dir.display().to_string(),
            source,
        };
        let mut stream = body.into_data_stream();
        let mut mem = Vec::new();
        let mut file: Option<(tokio::fs::File, u64)> = None;
        while let Some(chunk) = stream.next().await {
            let b = chunk.map_err(|e| SpoolError::Body(e.to_string()))?;
            match &mut file {
                Some((f, len)) => {
                    f.write_all(&b).await.map_err(file_err)?;
                    *len += b.len() as u64;
                }
                None => {
                    mem.extend_from_slice(&b);
                    if mem.len() > limit {
                        let std_file = tempfile::tempfile_in(dir).map_err(file_err)?;
                        let mut f = tokio::fs::File::from_std(std_file);
                        f.write_all(&mem).await.map_err(file_err)?;
                        file = Some((f, mem.len() as u64));
                        mem = Vec::new();
                    }
                }
            }
        }
        Ok(match file {
            Some((mut f, len)) => {
                f.flush().await.map_err(file_err)?;
                f.seek(SeekFrom::Start(0)).await.map_err(file_err)?;
                Spool::File { file: f, len }
            }
            None => Spool::Memory(mem),
        })
    }

    /// The body's size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Spool::Memory(m) => m.len() as u64,
            Spool::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends the body down `tx` in chunks; stops early when the receiver is gone (the
    /// extraction ended before the body's end: an error, or the tar's end marker).
    pub async fn feed(self, tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>) {
        match self {
            Spool::Memory(m) => {
                for c in m.chunks(CHUNK) {
                    if tx.send(Ok(c.to_vec())).await.is_err() {
                        return;
                    }
                }
            }
            Spool::File { mut file, .. } => loop {
                let mut buf = vec![0u8; CHUNK];
                match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(buf)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(parts: Vec<Vec<u8>>) -> Body {
        let s = futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p))),
        );
        Body::from_stream(s)
    }

    async fn collect(spool: Spool) -> Vec<u8> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let feeder = tokio::spawn(spool.feed(tx));
        let mut out = Vec::new();
        while let Some(c) = rx.recv().await {
            out.extend(c.unwrap());
        }
        feeder.await.unwrap();
        out
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::read(body_of(vec![b"ab".to_vec(), b"cd".to_vec()]), dir.path())
            .await
            .unwrap();
        assert!(matches!(s, Spool::Memory(_)));
        assert_eq!(s.len(), 4);
        assert_eq!(collect(s).await, b"abcd");
        let empty = Spool::read(Body::empty(), dir.path()).await.unwrap();
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn large_bodies_spill_to_an_unlinked_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let parts: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 10_000]).collect();
        let want: Vec<u8> = parts.concat();
        let s = Spool::read_with_limit(body_of(parts), dir.path(), 64 << 10)
            .await
            .unwrap();
        assert!(matches!(s, Spool::File { .. }), "{s:?}");
        assert_eq!(s.len(), want.len() as u64);
        // Anonymous: nothing named in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(collect(s).await, want);
    }

    #[tokio::test]
    async fn a_broken_body_is_an_error_and_a_gone_receiver_stops_the_feed() {
        let dir = tempfile::tempdir().unwrap();
        let s = futures_util::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"x")),
            Err(std::io::Error::other("peer reset")),
        ]);
        let e = Spool::read(Body::from_stream(s), dir.path())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("peer reset"), "{e}");

        let s = Spool::Memory(vec![7; 5 * CHUNK]);
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let feeder = tokio::spawn(s.feed(tx));
        assert_eq!(rx.recv().await.unwrap().unwrap().len(), CHUNK);
        drop(rx);
        tokio::time::timeout(std::time::Duration::from_secs(5), feeder)
            .await
            .expect("the feed stops when the receiver is gone")
            .unwrap();
    }
}
