//! Image services: the engine's face over berth-image (pull, list, inspect, tag, remove,
//! import), with the "in use by a container" checks the store cannot make.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The runtime defaults an image carries (OCI image config `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `SHELL`: what a container's `CMD-SHELL` healthcheck runs with (empty: `/bin/sh -c`).
    pub shell: Vec<String>,
    /// `HEALTHCHECK` (durations in nanoseconds, 0 = default).
    pub healthcheck: Option<crate::health::HealthCheck>,
}

/// One row of the image list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSummary {
    /// `sha256:<hex>` of the config.
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
    /// Containers using it (-1 when not computed).
    pub containers: i64,
}

/// What image inspect shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub config: ImageConfig,
    pub architecture: String,
    pub os: String,
    pub variant: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
    pub author: String,
    pub comment: String,
}

/// One pull progress message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullProgress {
    /// Short layer id, when the message is about a layer.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: ...`, `Status: ...`.
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// Registry credentials a client sent: the `X-Registry-Auth` header of a pull or push, or
/// the body of `POST /auth`. The daemon never reads a credential file of its own (dockerd
/// does not either): clients keep credentials and send them with each request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// `127.0.0.1:5000`, `https://index.docker.io/v1/`; Docker Hub when empty.
    pub server_address: String,
    /// An OAuth2 refresh token from an earlier login; used instead of the password.
    pub identity_token: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

impl RegistryAuth {
    /// The credentials to present; `None` (anonymous) when there are none.
    fn credentials(&self) -> Option<berth_image::Credentials> {
        if !self.identity_token.is_empty() {
            return Some(berth_image::Credentials::from_identity_token(
                self.identity_token.clone(),
            ));
        }
        (!self.username.is_empty() || !self.password.is_empty()).then(|| berth_image::Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }
}

/// Progress sink for pulls.
pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<PullProgress>;

/// One line of the `rmi` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}

use crate::error::{EngineError, Result};
use crate::options::Filters;
use crate::Engine;
use berth_image::{ImageRecord, ImageRef, PullEvent};

/// `busybox` → `busybox:latest` (Docker's form in messages); unparsable input as given.
pub fn display_ref(s: &str) -> String {
    ImageRef::parse(s)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| s.to_string())
}

/// berth-image's error as an engine error (kind kept, message as berth-image words it).
pub(crate) fn image_error(e: berth_image::ImageError) -> EngineError {
    use berth_image::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => crate::ErrorKind::NotFound,
        K::Conflict => crate::ErrorKind::Conflict,
        K::InvalidArgument => crate::ErrorKind::InvalidArgument,
        K::Unauthorized => crate::ErrorKind::InvalidArgument,
        K::Unavailable => crate::ErrorKind::Unavailable,
        K::Internal => crate::ErrorKind::Internal,
    };
    EngineError::new(kind, e.to_string())
}

/// The engine's view of an image config's container defaults.
pub(crate) fn image_config_of(c: &berth_image::ImageConfig) -> ImageConfig {
    let cc = &c.config;
    ImageConfig {
        entrypoint: cc.entrypoint.clone(),
        cmd: cc.cmd.clone(),
        env: cc.env.clone().unwrap_or_default(),
        working_dir: cc.working_dir.clone().unwrap_or_default(),
        user: cc.user.clone().unwrap_or_default(),
        exposed_ports: cc
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        volumes: cc
            .volumes
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        stop_signal: cc.stop_signal.clone(),
        labels: cc.labels.clone().unwrap_or_default(),
        shell: cc.shell.clone().unwrap_or_default(),
        healthcheck: crate::health::merge(None, cc.healthcheck.as_ref()),
    }
}

fn parse_created(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn summary_of(r: &ImageRecord, containers: i64) -> ImageSummary {
    ImageSummary {
        id: r.id.to_string(),
        parent_id: String::new(),
        repo_tags: r.repo_tags.clone(),
        repo_digests: r.repo_digests.clone(),
        created: parse_created(&r.created),
        size: r.size,
        labels: r.config.config.labels.clone().unwrap_or_default(),
        containers,
    }
}

fn details_of(r: &ImageRecord, containers: i64) -> ImageDetails {
    ImageDetails {
        summary: summary_of(r, containers),
        config: image_config_of(&r.config),
        architecture: r.config.architecture.clone(),
        os: r.config.os.clone(),
        variant: r.config.variant.clone().unwrap_or_default(),
        layers: r
            .config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect(),
        author: r.config.author.clone().unwrap_or_default(),
        comment: r
            .config
            .history
            .last()
            .and_then(|h| h.comment.clone())
            .unwrap_or_default(),
    }
}

/// berth-image's progress event as a Docker-shaped message.
fn progress_of(ev: PullEvent) -> PullProgress {
    match ev {
        PullEvent::PullingFrom { repository, tag } => PullProgress {
            id: Some(tag),
            status: format!("Pulling from {repository}"),
            ..Default::default()
        },
        PullEvent::Layer { id, status } => {
            let p = status.progress();
            PullProgress {
                id: Some(id),
                status: status.docker_status().to_string(),
                current: p.map(|x| x.0),
                total: p.map(|x| x.1),
            }
        }
        PullEvent::Digest(d) => PullProgress {
            status: format!("Digest: {d}"),
            ..Default::default()
        },
        PullEvent::Status(s) => PullProgress {
            status: s,
            ..Default::default()
        },
    }
}

impl Engine {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&berth_image::ImageStore) -> std::result::Result<T, berth_image::ImageError>
            + Send
            + 'static,
    ) -> Result<T> {
        let store = self.inner.images.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(image_error)
    }

    /// How many containers use each image id.
    fn image_use_counts(&self) -> std::collections::HashMap<String, i64> {
        let mut m = std::collections::HashMap::new();
        for c in self.all_containers() {
            *m.entry(c.snapshot().image_id).or_insert(0) += 1;
        }
        m
    }

    /// Pull `reference` (`platform` like `linux/amd64`), sending progress messages.
    pub async fn image_pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        progress: Option<ProgressSender>,
    ) -> Result<ImageSummary> {
        self.image_pull_auth(reference, platform, None, progress)
            .await
    }

    /// [`Engine::image_pull`] with the client's registry credentials (`X-Registry-Auth`).
    pub async fn image_pull_auth(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<RegistryAuth>,
        progress: Option<ProgressSender>,
    ) -> Result<ImageSummary> {
        let r = ImageRef::parse(reference).map_err(|e| EngineError::invalid(e.to_string()))?;
        let platform = match platform.filter(|p| !p.is_empty()) {
            Some(p) => Some(
                berth_image::Platform::parse(p).map_err(|e| EngineError::invalid(e.to_string()))?,
            ),
            None => None,
        };
        let opts = berth_image::PullOptions {
            platform,
            credentials: auth.as_ref().and_then(RegistryAuth::credentials),
        };
        let sink = move |ev: PullEvent| {
            if let Some(tx) = &progress {
                let _ = tx.send(progress_of(ev));
            }
        };
        // berth-image's pull future is not `Send` (a higher-ranked closure inside it), so it
        // runs on a blocking thread driven by this runtime; that keeps `image_pull` `Send`.
        let store = self.inner.images.clone();
        let handle = tokio::runtime::Handle::current();
        let r2 = r.clone();
        let res =
            tokio::task::spawn_blocking(move || handle.block_on(store.pull(&r2, &opts, &sink)))
                .await
                .map_err(|e| EngineError::internal(e.to_string()))?;
        let rec = res.map_err(|e| match e.kind() {
            berth_image::ErrorKind::NotFound => EngineError::not_found(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                r.familiar_name()
            )),
            _ => image_error(e),
        })?;
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), r.familiar());
        self.emit("image", "pull", &r.familiar(), attrs);
        Ok(summary_of(&rec, 0))
    }

    /// Images, newest first (`dangling`, `reference` and `label` filters).
    pub async fn image_list(&self, all: bool, filters: Filters) -> Result<Vec<ImageSummary>> {
        let _ = all;
        let recs = self.blocking(|s| s.list()).await?;
        let counts = self.image_use_counts();
        let mut out = Vec::new();
        for r in recs {
            let mut keep = true;
            for (k, vals) in &filters {
                keep &= match k.as_str() {
                    "dangling" => vals.iter().any(|v| (v == "true") == r.repo_tags.is_empty()),
                    "reference" => vals.iter().any(|v| {
                        r.repo_tags
                            .iter()
                            .any(|t| t == v || t.split(':').next() == Some(v.as_str()))
                    }),
                    "label" => vals.iter().all(|v| {
                        let labels = r.config.config.labels.clone().unwrap_or_default();
                        match v.split_once('=') {
                            Some((k, x)) => labels.get(k).map(|y| y == x).unwrap_or(false),
                            None => labels.contains_key(v.as_str()),
                        }
                    }),
                    "before" | "since" | "until" => true,
                    other => return Err(EngineError::invalid(format!("invalid filter '{other}'"))),
                };
            }
            if keep {
                let n = counts.get(&r.id.to_string()).copied().unwrap_or(0);
                out.push(summary_of(&r, n));
            }
        }
        Ok(out)
    }

    pub async fn image_inspect(&self, name: &str) -> Result<ImageDetails> {
        let n = name.to_string();
        let r = self.blocking(move |s| s.get(&n)).await.map_err(|e| {
            if e.kind == crate::ErrorKind::NotFound {
                EngineError::no_such_image(name)
            } else {
                e
            }
        })?;
        let n = self
            .image_use_counts()
            .get(&r.id.to_string())
            .copied()
            .unwrap_or(0);
        Ok(details_of(&r, n))
    }

    /// Tag `source` as `repo[:tag]`.
    pub async fn image_tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let r = ImageRef::parse(&target).map_err(|e| EngineError::invalid(e.to_string()))?;
        let src = source.to_string();
        let r2 = r.clone();
        self.blocking(move |s| s.tag(&src, &r2))
            .await
            .map_err(|e| {
                if e.kind == crate::ErrorKind::NotFound {
                    EngineError::no_such_image(source)
                } else {
                    e
                }
            })?;
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), r.familiar());
        self.emit("image", "tag", source, attrs);
        Ok(())
    }

    /// Remove an image (refused while a container uses it unless `force`).
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let used: std::collections::HashSet<String> = self.image_use_counts().into_keys().collect();
        let n = name.to_string();
        let events = self
            .blocking(move |s| {
                let r = s.remove(&n, force, &|id| used.contains(&id.to_string()))?;
                if prune {
                    let _ = s.gc();
                }
                Ok(r)
            })
            .await
            .map_err(|e| {
                if e.kind == crate::ErrorKind::NotFound {
                    EngineError::no_such_image(name)
                } else {
                    e
                }
            })?;
        let mut out = Vec::new();
        for ev in events {
            match ev {
                berth_image::RemoveEvent::Untagged(t) => {
                    self.emit("image", "untag", &t, BTreeMap::new());
                    out.push(ImageDeleteItem::Untagged(t));
                }
                berth_image::RemoveEvent::Deleted(id) => {
                    self.emit("image", "delete", &id.to_string(), BTreeMap::new());
                    out.push(ImageDeleteItem::Deleted(id.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Import a rootfs tarball as a single-layer image, tagged `reference` when given.
    pub async fn image_import(
        &self,
        tar: &std::path::Path,
        reference: Option<&str>,
    ) -> Result<ImageSummary> {
        let tag = match reference.filter(|r| !r.is_empty()) {
            Some(r) => Some(ImageRef::parse(r).map_err(|e| EngineError::invalid(e.to_string()))?),
            None => None,
        };
        let path = tar.to_path_buf();
        let rec = self
            .blocking(move |s| {
                let mut f =
                    std::fs::File::open(&path).map_err(|e| berth_image::ImageError::Io {
                        op: "open",
                        path: path.display().to_string(),
                        source: e,
                    })?;
                s.import(&mut f, tag.as_ref(), Default::default())
            })
            .await?;
        self.emit("image", "import", &rec.id.to_string(), BTreeMap::new());
        Ok(summary_of(&rec, 0))
    }
}

fn push_progress(ev: berth_image::PushEvent) -> PullProgress {
    use berth_image::PushEvent as P;
    match ev {
        P::Repository(r) => PullProgress {
            status: format!("The push refers to repository [{r}]"),
            ..Default::default()
        },
        P::Preparing { id } => PullProgress {
            id: Some(id),
            status: "Preparing".into(),
            ..Default::default()
        },
        P::Pushing { id, current, total } => PullProgress {
            id: Some(id),
            status: "Pushing".into(),
            current: Some(current),
            total: Some(total),
        },
        P::Pushed { id } => PullProgress {
            id: Some(id),
            status: "Pushed".into(),
            ..Default::default()
        },
        P::LayerExists { id } => PullProgress {
            id: Some(id),
            status: "Layer already exists".into(),
            ..Default::default()
        },
        P::Done { tag, digest, size } => PullProgress {
            status: format!("{tag}: digest: {digest} size: {size}"),
            ..Default::default()
        },
    }
}

impl Engine {
    /// `docker load`: every image of an archive (docker-archive or OCI layout tar).
    pub async fn image_load(&self, tar: &std::path::Path) -> Result<Vec<ImageSummary>> {
        let path = tar.to_path_buf();
        let recs = self
            .blocking(move |s| {
                let mut f =
                    std::fs::File::open(&path).map_err(|e| berth_image::ImageError::Io {
                        op: "open",
                        path: path.display().to_string(),
                        source: e,
                    })?;
                s.load(&mut f)
            })
            .await?;
        for r in &recs {
            self.emit("image", "load", &r.id.to_string(), BTreeMap::new());
        }
        Ok(recs.iter().map(|r| summary_of(r, 0)).collect())
    }

    /// `docker save`: write `names` as one archive to `out`.
    pub async fn image_save(&self, names: &[String], out: &std::path::Path) -> Result<()> {
        let names = names.to_vec();
        let out = out.to_path_buf();
        self.blocking(move |s| {
            let mut f = std::fs::File::create(&out).map_err(|e| berth_image::ImageError::Io {
                op: "create",
                path: out.display().to_string(),
                source: e,
            })?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            s.save(&refs, &mut f)
        })
        .await
    }

    /// `docker push` of a tagged local image; returns the manifest digest.
    pub async fn image_push(&self, name: &str, progress: Option<ProgressSender>) -> Result<String> {
        self.image_push_auth(name, None, progress).await
    }

    /// [`Engine::image_push`] with the client's registry credentials (`X-Registry-Auth`).
    pub async fn image_push_auth(
        &self,
        name: &str,
        auth: Option<RegistryAuth>,
        progress: Option<ProgressSender>,
    ) -> Result<String> {
        let credentials = auth.as_ref().and_then(RegistryAuth::credentials);
        let store = self.inner.images.clone();
        let handle = tokio::runtime::Handle::current();
        let n = name.to_string();
        let sink = move |ev: berth_image::PushEvent| {
            if let Some(tx) = &progress {
                let _ = tx.send(push_progress(ev));
            }
        };
        // Same reason as pull: run the (non-Send) future on a blocking thread.
        let d = tokio::task::spawn_blocking(move || {
            handle.block_on(store.push(&n, credentials, &sink))
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))?
        .map_err(image_error)?;
        self.emit("image", "push", name, BTreeMap::new());
        Ok(d.to_string())
    }
}

impl Engine {
    /// `image prune`: remove unused images — dangling (untagged) ones, or every unused one
    /// with `all` — then collect unreferenced layers. Returns what `rmi` would list, and
    /// the bytes freed.
    pub async fn image_prune(&self, all: bool) -> Result<(Vec<ImageDeleteItem>, u64)> {
        let used: std::collections::HashSet<String> = self.image_use_counts().into_keys().collect();
        let recs = self.blocking(|s| s.list()).await?;
        let mut out = Vec::new();
        for r in recs {
            let id = r.id.to_string();
            if used.contains(&id) || (!all && !r.repo_tags.is_empty()) {
                continue;
            }
            match self.image_remove(&id, true, false).await {
                Ok(items) => out.extend(items),
                Err(e) if e.kind == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let gc = self.blocking(|s| s.gc()).await?;
        self.emit("image", "prune", "", BTreeMap::new());
        Ok((out, gc.bytes))
    }
}

/// `host`, `host:port`, `[v6]:port`: what a login's server address must come down to.
fn is_registry_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (h.starts_with('[') || !h.contains(':')) => {
            (h, Some(p))
        }
        _ => (s, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

impl Engine {
    /// `POST /auth` (`docker login`): checks the credentials against the registry the way
    /// dockerd does (ping `/v2/`, answer its challenge) and stores nothing. Returns the
    /// identity token the registry's token server handed out, or an empty string.
    pub async fn registry_login(&self, auth: &RegistryAuth) -> Result<String> {
        use berth_image::registry::RegistryError as R;
        let registry = berth_image::registry::login_registry(&auth.server_address);
        if !is_registry_host(&registry) {
            return Err(EngineError::invalid(format!(
                "unable to parse server address {:?}: give a registry as host[:port]",
                auth.server_address
            )));
        }
        let creds = auth.credentials().unwrap_or(berth_image::Credentials {
            username: String::new(),
            password: String::new(),
        });
        let store = self.inner.images.clone();
        match store.registry().login_check(&registry, &creds).await {
            Ok(token) => Ok(token.unwrap_or_default()),
            Err(e @ (R::LoginRefused { .. } | R::BadCredentials { .. })) => {
                Err(EngineError::unauthorized(e.to_string()))
            }
            Err(e) => Err(EngineError::internal(e.to_string())),
        }
    }
}

#[cfg(test)]
mod login_tests {
    #[test]
    fn registry_hosts() {
        for ok in [
            "127.0.0.1:5000",
            "docker.io",
            "reg.example",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(super::is_registry_host(ok), "{ok}");
        }
        for bad in [
            "a b",
            "host:port",
            "host:0",
            ":5000",
            "[::1",
            "a/b",
            "x:1:2",
            "",
        ] {
            assert!(!super::is_registry_host(bad), "{bad}");
        }
    }
}
