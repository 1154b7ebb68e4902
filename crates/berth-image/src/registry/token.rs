//! The token endpoint of a Bearer challenge (`realm`): a `GET` with Basic credentials (or
//! none), or for an identity token the OAuth2 refresh-token `POST` — what distribution's
//! token handler does for dockerd.
//!
//! ```text
//! GET  <realm>?service=S&scope=repository:R:pull[&offline_token=true&client_id=docker]
//!      Authorization: Basic base64(user:password)
//! POST <realm>   grant_type=refresh_token&refresh_token=T&service=S&scope=…&client_id=docker
//! ← 200 {"token"|"access_token": "…", "refresh_token": "…"?, "expires_in": 300}
//! ```

use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;

use super::auth::Credentials;
use super::client::{error_chain, read_limited, RegistryClient, RegistryError};

/// The client id dockerd presents to token servers (moby's `AuthClientID`).
const CLIENT_ID: &str = "docker";

/// The token endpoint's reply.
#[derive(serde::Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    /// Handed out for `offline_token=true` requests: what `POST /auth` returns as the
    /// client's `IdentityToken`.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenReply {
    /// `token`, else `access_token`.
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref())
            .filter(|t| !t.is_empty())
    }
}

/// What a token endpoint answered.
pub(crate) enum TokenAnswer {
    Granted(TokenReply),
    /// A non-2xx status, with (the start of) the body.
    Refused {
        status: StatusCode,
        body: Vec<u8>,
    },
}

/// The registry's words for a refused token request: `details` (distribution's token
/// servers, Docker Hub), else `errors[0].message`, else `authentication required`.
pub(crate) fn refusal_detail(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["details"]
        .as_str()
        .or_else(|| v["errors"][0]["message"].as_str())
        .or_else(|| v["error_description"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("authentication required")
        .to_string()
}

impl RegistryClient {
    /// Asks `realm` for a token for `scope` (none: the service alone, as `docker login`
    /// does). `offline` asks for a refresh token too (`offline_token=true`).
    pub(crate) async fn request_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        creds: Option<&Credentials>,
        offline: bool,
    ) -> Result<TokenAnswer, RegistryError> {
        let token_err = |message: String| RegistryError::Token {
            realm: realm.into(),
            message,
        };
        let mut url =
            reqwest::Url::parse(realm).map_err(|e| token_err(format!("bad realm URL: {e}")))?;
        let rb = match creds.and_then(Credentials::identity_token) {
            Some(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", CLIENT_ID),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                if let Some(s) = scope {
                    form.push(("scope", s));
                }
                self.http_client().post(url).form(&form)
            }
            None => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    if let Some(s) = scope {
                        q.append_pair("scope", s);
                    }
                    if offline && creds.is_some() {
                        q.append_pair("offline_token", "true");
                        q.append_pair("client_id", CLIENT_ID);
                    }
                }
                let rb = self.http_client().get(url);
                match creds {
                    Some(c) => rb.header(AUTHORIZATION, c.basic_header()),
                    None => rb,
                }
            }
        };
        let resp = rb.send().await.map_err(|e| token_err(error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_limited(resp, 64 << 10, registry, "a token error")
                .await
                .unwrap_or_default();
            return Ok(TokenAnswer::Refused { status, body });
        }
        let body = read_limited(resp, 1 << 20, registry, "a token reply").await?;
        let reply: TokenReply = serde_json::from_slice(&body)
            .map_err(|e| token_err(format!("reply is not JSON: {e}")))?;
        if reply.bearer().is_none() {
            return Err(token_err("reply has no token".into()));
        }
        Ok(TokenAnswer::Granted(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_details() {
        assert_eq!(
            refusal_detail(br#"{"details":"incorrect username or password"}"#),
            "incorrect username or password"
        );
        assert_eq!(
            refusal_detail(br#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#),
            "no"
        );
        assert_eq!(refusal_detail(b"<html>"), "authentication required");
    }

    #[test]
    fn bearer_prefers_token() {
        let r: TokenReply =
            serde_json::from_str(r#"{"token":"","access_token":"a","refresh_token":"r"}"#).unwrap();
        assert_eq!(r.bearer(), Some("a"));
        assert_eq!(r.refresh_token.as_deref(), Some("r"));
    }
}
