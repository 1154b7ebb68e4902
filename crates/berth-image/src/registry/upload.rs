//! Push side of the registry protocol: blob existence checks, monolithic uploads
//! (`POST /blobs/uploads/` then `PUT <location>?digest=…`), manifest `PUT`.

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::client::{RegistryClient, RegistryError, RepoAccess};
use crate::digest::Digest;

impl RegistryClient {
    /// Whether the registry has the blob already.
    pub async fn blob_exists(&self, repo: &RepoAccess, d: &Digest) -> Result<bool, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{d}",
            self.base_url(&repo.registry),
            repo.repository
        );
        let resp = self.send(repo, &|c| c.request(Method::HEAD, &url)).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.check(repo, resp, None, Some(d)).await.map(|_| false),
        }
    }

    /// Uploads a blob in one request after opening an upload session.
    pub async fn upload_blob(
        &self,
        repo: &RepoAccess,
        d: &Digest,
        data: Bytes,
    ) -> Result<(), RegistryError> {
        let len = data.len() as u64;
        self.upload(repo, d, len, &|| reqwest::Body::from(data.clone()))
            .await
    }

    /// Uploads a blob streamed from a file (no copy of it in memory).
    pub async fn upload_blob_file(
        &self,
        repo: &RepoAccess,
        d: &Digest,
        path: &std::path::Path,
        len: u64,
    ) -> Result<(), RegistryError> {
        let body = || match std::fs::File::open(path) {
            Ok(f) => reqwest::Body::wrap_stream(file_stream(tokio::fs::File::from_std(f))),
            // the registry then sees a short body and refuses the digest
            Err(_) => reqwest::Body::from(Vec::new()),
        };
        self.upload(repo, d, len, &body).await
    }

    async fn upload(
        &self,
        repo: &RepoAccess,
        d: &Digest,
        len: u64,
        body: &(dyn Fn() -> reqwest::Body + Sync),
    ) -> Result<(), RegistryError> {
        let base = self.base_url(&repo.registry);
        let start = format!("{base}/v2/{}/blobs/uploads/", repo.repository);
        let resp = self
            .send(repo, &|c| c.post(&start).header(CONTENT_LENGTH, "0"))
            .await?;
        let resp = self.check(repo, resp, None, None).await?;
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Status {
                registry: repo.registry.clone(),
                status: resp.status().as_u16(),
                url: start.clone(),
                message: "upload started without a Location".into(),
            })?
            .to_string();
        let mut url = reqwest::Url::parse(&start)
            .and_then(|u| u.join(&loc))
            .map_err(|e| RegistryError::Status {
                registry: repo.registry.clone(),
                status: 202,
                url: loc.clone(),
                message: e.to_string(),
            })?;
        url.query_pairs_mut().append_pair("digest", d.as_str());
        let resp = self
            .send(repo, &|c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .body(body())
            })
            .await?;
        self.check(repo, resp, None, None).await.map(|_| ())
    }

    /// Puts a manifest under a tag or digest; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &RepoAccess,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url(&repo.registry),
            repo.repository
        );
        let resp = self
            .send(repo, &|c| {
                c.put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let resp = self.check(repo, resp, None, None).await?;
        let header = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| Digest::parse(d).ok());
        Ok(header.unwrap_or_else(|| Digest::of(&body)))
    }
}

/// A file as a stream of 256 KiB chunks.
fn file_stream(
    f: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(f), |state| async move {
        use tokio::io::AsyncReadExt;
        let mut f = state?;
        let mut buf = vec![0u8; 256 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
