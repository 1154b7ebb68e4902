//! `docker login` / `logout`: check credentials against a registry, store them in the
//! credential file; and `X-Registry-Auth` header decoding for the daemon.

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::auth::{self, Challenge, Credentials};
use super::client::{error_chain, RegistryClient, RegistryError};

impl RegistryClient {
    /// Checks `creds` against `registry` (`GET /v2/`, then the challenge it answers with).
    pub async fn check_login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base_url(registry));
        let conn = |e: reqwest::Error| RegistryError::Connect {
            registry: registry.into(),
            message: error_chain(&e),
        };
        let resp = self.http_client().get(&url).send().await.map_err(conn)?;
        if resp.status().is_success() {
            return Ok(());
        }
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Status {
                registry: registry.into(),
                status: resp.status().as_u16(),
                url,
                message: "not a registry API endpoint".into(),
            });
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let bad = || RegistryError::BadCredentials {
            registry: registry.into(),
        };
        match challenge {
            Some(Challenge::Basic) | None => {
                let r = self
                    .http_client()
                    .get(&url)
                    .header(AUTHORIZATION, creds.basic_header())
                    .send()
                    .await
                    .map_err(conn)?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(bad())
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                // like docker: a token for the service alone, no repository scope
                let mut u = reqwest::Url::parse(&realm).map_err(|e| RegistryError::Token {
                    realm: realm.clone(),
                    message: e.to_string(),
                })?;
                if let Some(s) = &service {
                    u.query_pairs_mut().append_pair("service", s);
                }
                let r = self
                    .http_client()
                    .get(u)
                    .header(AUTHORIZATION, creds.basic_header())
                    .send()
                    .await
                    .map_err(conn)?;
                match r.status() {
                    s if s.is_success() => Ok(()),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(bad()),
                    s => Err(RegistryError::Token {
                        realm,
                        message: format!("status {s}"),
                    }),
                }
            }
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
/// Empty, invalid or `{}` mean anonymous (`None`). `identitytoken` (OAuth refresh tokens)
/// is not supported yet and also yields `None`.
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
            decode_x_registry_auth(&enc(r#"{"identitytoken":"t"}"#)),
            None
        );
    }
}
