//! Registry credentials on the wire: `POST /auth` (`docker login`) and the
//! `X-Registry-Auth` header that pulls and pushes carry.
//!
//! The daemon stores no credentials (like dockerd): the client keeps them (the docker CLI in
//! its `config.json`) and sends them base64url-encoded with every pull and push:
//!
//! ```text
//! X-Registry-Auth: base64url({"username":"u","password":"p","serveraddress":"127.0.0.1:5000"})
//! X-Registry-Auth: base64url({"identitytoken":"…"})        (after a login that returned one)
//! X-Registry-Auth: e30=                                     ({}: anonymous)
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use berth_engine::images::RegistryAuth;

use super::ok;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The fields of Docker's `AuthConfig` the engine uses. Unknown fields (`email`,
/// `registrytoken`) are ignored, never refused.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthConfig {
    username: String,
    password: String,
    /// base64(`user:password`), what `config.json` keeps; used when the two are absent.
    auth: String,
    serveraddress: String,
    identitytoken: String,
}

impl AuthConfig {
    fn into_registry_auth(self) -> RegistryAuth {
        let (mut username, mut password) = (self.username, self.password);
        if username.is_empty() && password.is_empty() && !self.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((u, p)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                (username, password) = (u.to_string(), p.to_string());
            }
        }
        RegistryAuth {
            username,
            password,
            server_address: self.serveraddress,
            identity_token: self.identitytoken,
        }
    }
}

/// Decodes `X-Registry-Auth` (base64url JSON, padded or not; some clients send standard
/// base64). Missing, empty, undecodable or `{}` mean anonymous, as in dockerd.
pub fn x_registry_auth(headers: &HeaderMap) -> Option<RegistryAuth> {
    let h = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    if h.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
        .ok()?;
    let cfg: AuthConfig = serde_json::from_slice(&bytes).ok()?;
    let auth = cfg.into_registry_auth();
    (!auth.username.is_empty() || !auth.password.is_empty() || !auth.identity_token.is_empty())
        .then_some(auth)
}

/// Reply of `POST /auth` (`AuthenticateOKBody`): both fields always present.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct AuthReply {
    status: String,
    identity_token: String,
}

/// `POST /auth`: checks the credentials against the registry; 200 `Login Succeeded`,
/// 401 when the registry refuses them, 500 when it cannot be reached, 400 for a bad body.
pub async fn login(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid JSON: got EOF while reading request body",
        ));
    }
    let cfg: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let auth = cfg.into_registry_auth();
    let token = state.engine.registry_login(&auth).await?;
    Ok(ok(&AuthReply {
        status: "Login Succeeded".into(),
        identity_token: token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Registry-Auth", v.parse().unwrap());
        h
    }

    #[test]
    fn decodes_x_registry_auth() {
        let enc = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        assert_eq!(x_registry_auth(&HeaderMap::new()), None);
        assert_eq!(x_registry_auth(&header("e30=")), None);
        assert_eq!(x_registry_auth(&header("not base64!")), None);
        assert_eq!(x_registry_auth(&header(&enc("[1]"))), None);
        let a = x_registry_auth(&header(&enc(
            r#"{"username":"u","password":"p>?","serveraddress":"127.0.0.1:5000","email":"x"}"#,
        )))
        .unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p>?"));
        assert_eq!(a.server_address, "127.0.0.1:5000");
        // padded standard base64 of an `auth` entry, as some clients send it
        let std = base64::engine::general_purpose::STANDARD.encode(r#"{"auth":"dTpwOnE="}"#);
        let a = x_registry_auth(&header(&std)).unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p:q"));
        let a = x_registry_auth(&header(&enc(r#"{"identitytoken":"tok"}"#))).unwrap();
        assert_eq!(a.identity_token, "tok");
    }
}
