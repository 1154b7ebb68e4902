//! HTTP side of the registry protocol: authentication, retries, manifests, blobs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};

use super::auth::{self, Challenge, Credentials};
use super::token::TokenAnswer;
use super::RegistryConfig;
use crate::digest::Digest;
use crate::manifest::{ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES};

const ATTEMPTS: u32 = 4;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unauthorized: authentication required for {registry}/{repository}; log in with berth login {registry}")]
    AuthRequired {
        registry: String,
        repository: String,
    },
    #[error("unauthorized: incorrect username or password for {registry}")]
    BadCredentials { registry: String },
    /// A login the registry refused, in dockerd's words (`login attempt to http://…/v2/
    /// failed with status: 401 Unauthorized`, `Get "http://…/v2/": unauthorized: …`).
    #[error("{message}")]
    LoginRefused { registry: String, message: String },
    #[error("denied: access to {registry}/{repository} refused: {message}")]
    Denied {
        registry: String,
        repository: String,
        message: String,
    },
    #[error("manifest for {name}:{reference} not found: manifest unknown")]
    ManifestUnknown { name: String, reference: String },
    #[error("repository {name} not found or access denied: {message}")]
    NameUnknown { name: String, message: String },
    #[error("blob {digest} not found in {name}: blob unknown")]
    BlobUnknown { name: String, digest: String },
    #[error("toomanyrequests: {registry} rate-limited the pull; wait and retry, or log in")]
    RateLimited { registry: String },
    #[error("TLS error talking to {registry}: {message} (for a plain-HTTP registry, add it to the insecure registries)")]
    Tls { registry: String, message: String },
    #[error("cannot reach registry {registry}: {message}")]
    Connect { registry: String, message: String },
    #[error("registry {registry} answered {status} for {url}: {message}")]
    Status {
        registry: String,
        status: u16,
        url: String,
        message: String,
    },
    #[error("registry {registry} sent {what} larger than {limit} bytes")]
    TooLarge {
        registry: String,
        what: String,
        limit: usize,
    },
    #[error("token server {realm} failed: {message}")]
    Token { realm: String, message: String },
    #[error(transparent)]
    AuthFile(#[from] auth::AuthFileError),
}

/// Who pulls from where: registry host, repository path and the credentials to present.
#[derive(Clone, Debug)]
pub struct RepoAccess {
    /// Registry domain as in the reference (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Explicit credentials (X-Registry-Auth); otherwise the credential file is consulted.
    pub credentials: Option<Credentials>,
    /// Actions to request a token for (`pull`, or `pull,push`).
    pub actions: &'static str,
}

/// A registry client shared by all pulls of a store (keeps connections and tokens).
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    /// `Authorization` values per (registry, repository, actions).
    tokens: Mutex<HashMap<String, String>>,
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// CA certificates (`<certs_dir>/<host>/*.crt`) as (host, PEM bytes).
fn certs_d_cas(dir: Option<&std::path::Path>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Some(rd) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return out;
    };
    for host in rd.flatten() {
        let Ok(files) = std::fs::read_dir(host.path()) else {
            continue;
        };
        for f in files.flatten() {
            if f.path().extension().is_some_and(|e| e == "crt") {
                if let Ok(pem) = std::fs::read(f.path()) {
                    out.push((host.file_name().to_string_lossy().to_string(), pem));
                }
            }
        }
    }
    out
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8);
        for (host, pem) in certs_d_cas(config.certs_dir.as_deref()) {
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| RegistryError::Tls {
                registry: host.clone(),
                message: format!("bad CA certificate in the certs directory: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| RegistryError::Connect {
            registry: "-".into(),
            message: error_chain(&e),
        })?;
        Ok(RegistryClient {
            http,
            config,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// `scheme://host` of the API for a registry domain.
    pub fn base_url(&self, registry: &str) -> String {
        let host = if registry == crate::reference::DOCKER_HUB {
            crate::reference::DOCKER_HUB_API
        } else {
            registry
        };
        let has_certs = self
            .config
            .certs_dir
            .as_ref()
            .is_some_and(|d| d.join(host).is_dir() || d.join(registry).is_dir());
        let plain = !has_certs
            && (is_loopback(host)
                || self
                    .config
                    .insecure
                    .iter()
                    .any(|i| i == host || i == registry));
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    fn credentials(&self, repo: &RepoAccess) -> Result<Option<Credentials>, RegistryError> {
        if repo.credentials.is_some() {
            return Ok(repo.credentials.clone());
        }
        match &self.config.auth_file {
            Some(f) => Ok(auth::lookup(f, &repo.registry)?),
            None => Ok(None),
        }
    }

    pub(crate) fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Drops cached tokens of a registry (after logout).
    pub(crate) fn forget_tokens(&self, registry: &str) {
        let prefix = format!("{registry}|");
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
    }

    /// Tokens are cached per registry, repository, actions and *credentials*: the daemon
    /// shares one client between all its clients, and a token one client earned with its
    /// password must never serve another client (or the same one after `logout`).
    fn token_key(repo: &RepoAccess) -> String {
        use sha2::Digest as _;
        let who = match &repo.credentials {
            Some(c) => {
                let mut h = sha2::Sha256::new();
                h.update((c.username.len() as u64).to_le_bytes());
                h.update(c.username.as_bytes());
                h.update(c.password.as_bytes());
                hex::encode(&h.finalize()[..12])
            }
            None => "-".to_string(),
        };
        format!(
            "{}|{}|{}|{who}",
            repo.registry, repo.repository, repo.actions
        )
    }

    /// Sends a request built by `build`, handling auth challenges, 429/5xx and connection
    /// errors (retried with exponential backoff). Returns the first non-401/429/5xx response.
    pub(crate) async fn send(
        &self,
        repo: &RepoAccess,
        build: &(dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let key = Self::token_key(repo);
        let mut authed = false;
        let mut attempt = 0;
        loop {
            let mut rb = build(&self.http);
            let cached = self
                .tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned();
            if let Some(a) = &cached {
                rb = rb.header(AUTHORIZATION, a);
            }
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let message = error_chain(&e);
                    let low = message.to_ascii_lowercase();
                    if low.contains("certificate")
                        || low.contains("tls")
                        || low.contains("handshake")
                    {
                        return Err(RegistryError::Tls {
                            registry: repo.registry.clone(),
                            message,
                        });
                    }
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(RegistryError::Connect {
                            registry: repo.registry.clone(),
                            message,
                        });
                    }
                    backoff(attempt).await;
                    continue;
                }
            };
            match resp.status() {
                StatusCode::UNAUTHORIZED if !authed => {
                    authed = true;
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(auth::parse_challenge);
                    let creds = self.credentials(repo)?;
                    let value = match challenge {
                        Some(Challenge::Basic) => match &creds {
                            Some(c) => c.basic_header(),
                            None => return Err(self.auth_required(repo)),
                        },
                        Some(Challenge::Bearer { realm, service, .. }) => {
                            format!(
                                "Bearer {}",
                                self.fetch_token(repo, &realm, service.as_deref(), creds.as_ref())
                                    .await?
                            )
                        }
                        None => return Err(self.auth_required(repo)),
                    };
                    self.tokens
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.clone(), value);
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(if self.credentials(repo)?.is_some() {
                        RegistryError::BadCredentials {
                            registry: repo.registry.clone(),
                        }
                    } else {
                        self.auth_required(repo)
                    })
                }
                s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        if s == StatusCode::TOO_MANY_REQUESTS {
                            return Err(RegistryError::RateLimited {
                                registry: repo.registry.clone(),
                            });
                        }
                        return Ok(resp);
                    }
                    backoff(attempt).await;
                }
                _ => return Ok(resp),
            }
        }
    }

    fn auth_required(&self, repo: &RepoAccess) -> RegistryError {
        RegistryError::AuthRequired {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
        }
    }

    async fn fetch_token(
        &self,
        repo: &RepoAccess,
        realm: &str,
        service: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        let scope = format!("repository:{}:{}", repo.repository, repo.actions);
        let answer = self
            .request_token(&repo.registry, realm, service, Some(&scope), creds, false)
            .await?;
        match answer {
            TokenAnswer::Granted(reply) => Ok(reply.bearer().unwrap_or_default().to_string()),
            TokenAnswer::Refused {
                status: StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN,
                ..
            } => Err(match creds {
                Some(_) => RegistryError::BadCredentials {
                    registry: repo.registry.clone(),
                },
                None => self.auth_required(repo),
            }),
            TokenAnswer::Refused { status, .. } => Err(RegistryError::Token {
                realm: realm.into(),
                message: format!("status {status}"),
            }),
        }
    }

    /// Fetches a manifest by tag or digest: (raw bytes, content type, `Docker-Content-Digest`).
    pub async fn manifest(
        &self,
        repo: &RepoAccess,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Option<Digest>), RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url(&repo.registry),
            repo.repository
        );
        let resp = self
            .send(repo, &|c| c.get(&url).header(ACCEPT, ACCEPT_MANIFESTS))
            .await?;
        let resp = self.check(repo, resp, Some(reference), None).await?;
        let ct = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let dcd = header_str(resp.headers(), "docker-content-digest")
            .and_then(|d| Digest::parse(&d).ok());
        let body = read_limited(resp, MAX_MANIFEST_BYTES, &repo.registry, "a manifest").await?;
        Ok((body, ct, dcd))
    }

    /// `HEAD` of a manifest: its digest without counting against rate limits.
    pub async fn manifest_digest(
        &self,
        repo: &RepoAccess,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url(&repo.registry),
            repo.repository
        );
        let resp = self
            .send(repo, &|c| {
                c.request(Method::HEAD, &url)
                    .header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        let resp = self.check(repo, resp, Some(reference), None).await?;
        Ok(
            header_str(resp.headers(), "docker-content-digest")
                .and_then(|d| Digest::parse(&d).ok()),
        )
    }

    /// Starts a blob download at `offset` (status 206 when the registry honoured the range).
    pub async fn blob(
        &self,
        repo: &RepoAccess,
        digest: &Digest,
        offset: u64,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base_url(&repo.registry),
            repo.repository
        );
        let resp = self
            .send(repo, &|c| {
                let rb = c.get(&url);
                if offset > 0 {
                    rb.header(RANGE, format!("bytes={offset}-"))
                } else {
                    rb
                }
            })
            .await?;
        self.check(repo, resp, None, Some(digest)).await
    }

    /// A small blob (a config) read whole, with a size cap.
    pub async fn blob_bytes(
        &self,
        repo: &RepoAccess,
        digest: &Digest,
        limit: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let resp = self.blob(repo, digest, 0).await?;
        read_limited(resp, limit, &repo.registry, "a config blob").await
    }

    /// Turns error statuses into [`RegistryError`]s using the registry's error body.
    pub(crate) async fn check(
        &self,
        repo: &RepoAccess,
        resp: reqwest::Response,
        reference: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<reqwest::Response, RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let url = resp.url().to_string();
        let body = read_limited(resp, 64 << 10, &repo.registry, "an error body")
            .await
            .unwrap_or_default();
        let (code, message) = error_code(&body);
        let name = format!("{}/{}", repo.registry, repo.repository);
        Err(match (status, code.as_str()) {
            (_, "MANIFEST_UNKNOWN") | (StatusCode::NOT_FOUND, _) if reference.is_some() => {
                RegistryError::ManifestUnknown {
                    name,
                    reference: reference.unwrap_or_default().to_string(),
                }
            }
            (_, "NAME_UNKNOWN") => RegistryError::NameUnknown { name, message },
            (_, "BLOB_UNKNOWN") | (StatusCode::NOT_FOUND, _) if digest.is_some() => {
                RegistryError::BlobUnknown {
                    name,
                    digest: digest.map(|d| d.to_string()).unwrap_or_default(),
                }
            }
            (StatusCode::FORBIDDEN, _) | (_, "DENIED") => RegistryError::Denied {
                registry: repo.registry.clone(),
                repository: repo.repository.clone(),
                message,
            },
            (StatusCode::TOO_MANY_REQUESTS, _) | (_, "TOOMANYREQUESTS") => {
                RegistryError::RateLimited {
                    registry: repo.registry.clone(),
                }
            }
            _ => RegistryError::Status {
                registry: repo.registry.clone(),
                status: status.as_u16(),
                url,
                message,
            },
        })
    }
}

fn header_str(h: &HeaderMap<HeaderValue>, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `{"errors":[{"code":"…","message":"…"}]}` → (code, message).
fn error_code(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["errors"][0];
    let code = e["code"].as_str().unwrap_or_default().to_string();
    let message = e["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string()
        });
    (code, message)
}

pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    registry: &str,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        registry: registry.into(),
        what: what.into(),
        limit,
    };
    if resp.content_length().is_some_and(|l| l as usize > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| RegistryError::Connect {
        registry: registry.into(),
        message: error_chain(&e),
    })? {
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(100u64 << attempt.min(6))).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_cached_per_credentials() {
        let access = |c: Option<(&str, &str)>| super::RepoAccess {
            registry: "r:5000".into(),
            repository: "a/b".into(),
            credentials: c.map(|(u, p)| super::Credentials {
                username: u.into(),
                password: p.into(),
            }),
            actions: "pull",
        };
        let k = |c| super::RegistryClient::token_key(&access(c));
        assert_ne!(k(None), k(Some(("u", "p"))));
        assert_ne!(k(Some(("u", "p"))), k(Some(("u", "q"))));
        assert_ne!(k(Some(("u", "p\0"))), k(Some(("u\0p", ""))));
        assert_eq!(k(Some(("u", "p"))), k(Some(("u", "p"))));
        assert!(k(None).starts_with("r:5000|"));
    }

    #[test]
    fn loopback_is_plain_http() {
        let c = super::RegistryClient::new(super::RegistryConfig {
            insecure: vec!["reg.lan:5000".into()],
            auth_file: None,
            certs_dir: None,
        })
        .unwrap();
        assert_eq!(c.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("localhost"), "http://localhost");
        assert_eq!(c.base_url("reg.lan:5000"), "http://reg.lan:5000");
        assert_eq!(c.base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(c.base_url("quay.io"), "https://quay.io");
    }
}
