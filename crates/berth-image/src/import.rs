//! Local layer sources: `docker import` of a rootfs tarball, and the shared step of `import`
//! and `load` — unpack a layer from a reader while keeping its bytes as a blob (so the image
//! can later be saved or pushed with the same digests).

use std::fs::File;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::{ChainId, DiffId, Digest};
use crate::error::{io_err, ImageError};
use crate::fsutil;
use crate::manifest::{self, Platform};
use crate::reference::ImageRef;
use crate::store::{ImageRecord, ImageStore, Layer};

/// Copies everything read into a file and a hash; remembers the first bytes (compression).
struct Tee<'a> {
    inner: &'a mut dyn Read,
    file: File,
    hasher: Sha256,
    head: Vec<u8>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.file.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        if self.head.len() < 4 {
            let take = (4 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl ImageStore {
    /// Unpacks a layer (any compression) on top of `parent` and keeps its bytes as a blob.
    pub(crate) fn apply_and_keep(
        &self,
        parent: Option<&ChainId>,
        input: &mut dyn Read,
        expected: Option<&DiffId>,
    ) -> Result<Layer, ImageError> {
        let tmp = self.root.join("ingest").join(fsutil::temp_name("local-"));
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let mut tee = Tee {
            inner: input,
            file,
            hasher: Sha256::new(),
            head: Vec::new(),
        };
        let res = self.snapshots.apply_layer(parent, &mut tee, expected);
        let (chain, stats) = match res {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        let blob = Digest::from_hasher(tee.hasher);
        let media_type = if tee.head.starts_with(&[0x1f, 0x8b]) {
            manifest::OCI_LAYER_GZIP
        } else if tee.head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            manifest::OCI_LAYER_ZSTD
        } else {
            manifest::OCI_LAYER
        };
        let dest = self.blob_path(&blob);
        std::fs::rename(&tmp, &dest).map_err(io_err("rename", &dest))?;
        Ok(Layer {
            diff_id: stats.diff_id,
            chain_id: chain,
            size: stats.size,
            blob: Some(blob),
            media_type: Some(media_type.to_string()),
        })
    }

    /// Imports a rootfs tarball as a single-layer image, tagged `tag` when given, with
    /// `defaults` (`--change`) as its container config.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        tag: Option<&ImageRef>,
        defaults: ContainerConfig,
    ) -> Result<ImageRecord, ImageError> {
        self.import_with(tar, tag, defaults, "Imported from tarball")
    }

    /// [`ImageStore::import`] with the history comment (`docker import -m`, else Docker's
    /// `Imported from <source>`).
    pub fn import_with(
        &self,
        tar: &mut dyn Read,
        tag: Option<&ImageRef>,
        defaults: ContainerConfig,
        comment: &str,
    ) -> Result<ImageRecord, ImageError> {
        let _writer = self.writer();
        let tagged = match tag {
            Some(t) if t.digest.is_some() => {
                return Err(ImageError::Invalid(format!(
                    "cannot import as {t}: give a tag, not a digest"
                )))
            }
            Some(t) => t.tagged(),
            None => None,
        };
        let layer = self.apply_and_keep(None, tar, None)?;
        let host = Platform::host();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let config = ImageConfig {
            architecture: host.architecture,
            os: host.os,
            variant: host.variant,
            created: Some(now.clone()),
            config: defaults,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(now),
                created_by: None,
                comment: Some(comment.to_string()),
                empty_layer: None,
            }],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&config).expect("config serialises");
        let id = self.write_blob(&bytes, None)?;
        self.commit_image(&id, vec![layer], None, tagged, None)?;
        self.get(&id.to_string())
    }
}

/// Why a tarball could not be fetched from a URL (`docker import URL`).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "invalid import source {0:?}: give an http:// or https:// URL, or - for the request body"
    )]
    BadUrl(String),
    #[error("failed to GET {url} with status {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("failed to GET {url}: {message}")]
    Http { url: String, message: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
}

impl FetchError {
    /// The caller's fault (a bad URL) rather than the remote's or ours.
    pub fn is_invalid(&self) -> bool {
        matches!(self, FetchError::BadUrl(_))
    }
}

/// Docker's reading of an import source: `host/x.tar` means `http://host/x.tar`; only http
/// and https are fetched.
pub fn import_url(src: &str) -> Result<reqwest::Url, FetchError> {
    let full = if src.contains("://") {
        src.to_string()
    } else {
        format!("http://{src}")
    };
    let url = reqwest::Url::parse(&full).map_err(|_| FetchError::BadUrl(src.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FetchError::BadUrl(src.to_string()));
    }
    Ok(url)
}

/// Downloads `src` (see [`import_url`]) into the file `dest`, calling `progress(bytes so
/// far, total when known)` as it goes; returns the size.
pub async fn fetch_url(
    src: &str,
    dest: &std::path::Path,
    mut progress: impl FnMut(u64, Option<u64>) + Send,
) -> Result<u64, FetchError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let url = import_url(src)?;
    let shown = url.to_string();
    let http = |e: reqwest::Error| FetchError::Http {
        url: shown.clone(),
        message: e.to_string(),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(http)?;
    let resp = client.get(url.clone()).send().await.map_err(http)?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(FetchError::Status {
            url: shown,
            status: status.as_u16(),
            body: body
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string(),
        });
    }
    let total = resp.content_length();
    let ioerr = |op| {
        let path = dest.display().to_string();
        move |source| FetchError::Io { op, path, source }
    };
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(ioerr("create"))?;
    let mut got = 0u64;
    let mut stream = resp.bytes_stream();
    progress(0, total);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http)?;
        file.write_all(&chunk).await.map_err(ioerr("write"))?;
        got += chunk.len() as u64;
        progress(got, total);
    }
    file.flush().await.map_err(ioerr("write"))?;
    Ok(got)
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn sources_read_like_docker() {
        assert_eq!(
            import_url("127.0.0.1:8080/x.tar").unwrap().as_str(),
            "http://127.0.0.1:8080/x.tar"
        );
        assert_eq!(
            import_url("https://example.test/a.tgz").unwrap().scheme(),
            "https"
        );
        assert!(import_url("ftp://host/x.tar").unwrap_err().is_invalid());
        assert!(import_url("file:///etc/passwd").is_err());
        assert!(import_url("http://").is_err());
    }
}
