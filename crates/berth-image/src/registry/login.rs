//! `docker login` / `logout`: check credentials against a registry, store them in the
//! credential file; and `X-Registry-Auth` header decoding for the daemon.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::auth::{self, Challenge, Credentials};
use super::client::{error_chain, RegistryClient, RegistryError};
use super::token::{refusal_detail, TokenAnswer};

/// How long a whole login check may take. moby gives each of its two requests 15 s; an
/// unreachable registry (Docker Hub on a machine without internet) must fail, not hang.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The registry a `docker login` server address names: `""`, `https://index.docker.io/v1/`,
/// `docker.io` → `docker.io`; `http://127.0.0.1:5000/v2/` → `127.0.0.1:5000` (like moby, the
/// scheme and path are dropped: the insecure-registry settings decide HTTP or HTTPS).
pub fn login_registry(server_address: &str) -> String {
    let s = server_address.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "docker.io" | crate::reference::DOCKER_HUB_API => {
            crate::reference::DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

impl RegistryClient {
    /// Checks `creds` against `registry` (`GET /v2/`, then the challenge it answers with).
    pub async fn check_login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<(), RegistryError> {
        self.login_check(registry, creds).await.map(|_| ())
    }

    /// What dockerd's `POST /auth` does: pings `/v2/`, answers the challenge with `creds`
    /// (Basic, or a token for the service alone with `offline_token=true`), then `GET /v2/`
    /// with what it got. Returns the identity (refresh) token the token server handed out,
    /// if it did. Refusals come back as [`RegistryError::LoginRefused`] in dockerd's words.
    pub async fn login_check(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, RegistryError> {
        match tokio::time::timeout(LOGIN_TIMEOUT, self.login_check_inner(registry, creds)).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Connect {
                registry: registry.into(),
                message: format!(
                    "no answer from {}/v2/ within {} s",
                    self.base_url(registry),
                    LOGIN_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    async fn login_check_inner(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, RegistryError> {
        let url = format!("{}/v2/", self.base_url(registry));
        // `Get "http://…/v2/": Connection refused (os error 111)`: the URL and the root
        // cause, as dockerd words it (reqwest's full chain repeats the URL three times)
        let conn = |e: reqwest::Error| {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            let cause = if std::ptr::addr_eq(cause, &e) {
                error_chain(&e)
            } else {
                cause.to_string()
            };
            RegistryError::Connect {
                registry: registry.into(),
                message: format!("Get \"{url}\": {cause}"),
            }
        };
        let failed = |status: StatusCode| {
            let message = format!(
                "login attempt to {url} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            if status == StatusCode::UNAUTHORIZED {
                RegistryError::LoginRefused {
                    registry: registry.into(),
                    message,
                }
            } else {
                RegistryError::Status {
                    registry: registry.into(),
                    status: status.as_u16(),
                    url: url.clone(),
                    message,
                }
            }
        };
        let resp = self.http_client().get(&url).send().await.map_err(conn)?;
        if resp.status().is_success() {
            // a registry without authentication takes any login (dockerd says the same)
            return Ok(None);
        }
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Err(failed(resp.status()));
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let (authorization, identity) = match challenge {
            None => return Err(failed(StatusCode::UNAUTHORIZED)),
            Some(Challenge::Basic) => (creds.basic_header(), None),
            Some(Challenge::Bearer { realm, service, .. }) => {
                // like dockerd: a token for the service alone, no repository scope
                let answer = self
                    .request_token(
                        registry,
                        &realm,
                        service.as_deref(),
                        None,
                        Some(creds),
                        true,
                    )
                    .await?;
                match answer {
                    TokenAnswer::Granted(reply) => (
                        format!("Bearer {}", reply.bearer().unwrap_or_default()),
                        reply.refresh_token.filter(|t| !t.is_empty()),
                    ),
                    TokenAnswer::Refused {
                        status: StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN,
                        body,
                    } => {
                        return Err(RegistryError::LoginRefused {
                            registry: registry.into(),
                            message: format!(
                                "Get \"{url}\": unauthorized: {}",
                                refusal_detail(&body)
                            ),
                        });
                    }
                    TokenAnswer::Refused { status, .. } => {
                        return Err(RegistryError::Token {
                            realm,
                            message: format!("status {status}"),
                        })
                    }
                }
            }
        };
        let r = self
            .http_client()
            .get(&url)
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .map_err(conn)?;
        if r.status().is_success() {
            Ok(identity.or_else(|| creds.identity_token().map(str::to_string)))
        } else {
            Err(failed(r.status()))
        }
    }

    /// `berth login`: checks the credentials, then stores them in the credential file.
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        self.check_login(registry, creds).await?;
        if let Some(f) = &self.config().auth_file {
            auth::store(f, registry, Some(creds))?;
        }
        Ok(())
    }

    /// `berth logout`: forgets stored credentials and cached tokens of `registry`.
    pub fn logout(&self, registry: &str) -> Result<(), RegistryError> {
        self.forget_tokens(registry);
        if let Some(f) = &self.config().auth_file {
            auth::store(f, registry, None)?;
        }
        Ok(())
    }
}

/// Decodes Docker's `X-Registry-Auth` header (base64url JSON `AuthConfig`, padded or not).
/// Empty, invalid or `{}` mean anonymous (`None`). An `identitytoken` (an OAuth2 refresh
/// token) wins over a password, as in dockerd, and is kept as
/// [`Credentials::from_identity_token`].
pub fn decode_x_registry_auth(header: &str) -> Option<Credentials> {
    let h = header.trim();
    if h.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    if let Some(t) = s("identitytoken") {
        return Some(Credentials::from_identity_token(t));
    }
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Some(Credentials {
            username: u,
            password: p,
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(s("auth")?)
        .ok()?;
    let (u, p) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_registry_auth() {
        let enc = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        assert_eq!(decode_x_registry_auth("e30="), None);
        assert_eq!(decode_x_registry_auth(""), None);
        assert_eq!(decode_x_registry_auth("!!!"), None);
        let c = decode_x_registry_auth(&enc(
            r#"{"username":"u","password":"p?>","serveraddress":"x"}"#,
        ))
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let padded = base64::engine::general_purpose::URL_SAFE.encode(r#"{"auth":"dTpwOnE="}"#);
        let c = decode_x_registry_auth(&padded).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
        assert_eq!(
            decode_x_registry_auth(&enc(r#"{"identitytoken":"t","username":"u"}"#)),
            Some(Credentials::from_identity_token("t"))
        );
    }

    #[test]
    fn login_registries() {
        for hub in [
            "",
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
        ] {
            assert_eq!(login_registry(hub), "docker.io", "{hub:?}");
        }
        assert_eq!(login_registry("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            login_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(login_registry("https://Reg.Example"), "reg.example");
    }
}
