//! The registry client (OCI distribution / Docker registry v2, pull side plus push).
//!
//! Written on reqwest 0.12 directly: oci-client would do most of this but needs reqwest 0.13,
//! and the workspace is on 0.12 (one HTTP stack, not two). The protocol part is small:
//! challenge → token → request, the manifest `Accept` list, blob GETs with `Range` for resume.
//! Redirects to blob storage use reqwest's default policy, which drops `Authorization`
//! (and cookies) when host, port or scheme change (`remove_sensitive_headers`).

pub mod auth;
mod client;
mod login;
mod token;
mod upload;

pub use auth::Credentials;
pub(crate) use client::error_chain;
pub use client::{RegistryClient, RegistryError, RepoAccess};
pub use login::{decode_x_registry_auth, login_registry, LOGIN_TIMEOUT};

use std::path::PathBuf;

/// Registry settings the daemon passes in (`--insecure-registry`, the credential file).
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// Registries spoken to over plain HTTP (`host:port`); loopback always is.
    pub insecure: Vec<String>,
    /// Docker `config.json` to read credentials from (and `berth login` to write).
    pub auth_file: Option<PathBuf>,
    /// Like `/etc/docker/certs.d`: a registry `host:port` with a directory here is spoken to
    /// over HTTPS (loopback included), trusting the CA certificates (`*.crt`) in it.
    pub certs_dir: Option<PathBuf>,
}

impl RegistryConfig {
    /// Docker's credential file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`
    /// (what `docker login` writes, so existing logins are honoured).
    pub fn default_auth_file() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker/config.json"))
    }
}
