//! The client proper.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use crate::stream::{BodyStream, Hijacked};
use crate::ClientError;

/// Where the daemon listens unless `-H` or `BERTH_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// The API version prefix the client speaks.
const PREFIX: &str = "/v1.47";

/// A request body: empty, bytes, or a stream (import/load).
pub type ReqBody = BoxBody<Bytes, std::io::Error>;

/// A handle on the daemon. Cheap to clone; every request opens its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
}

fn full(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

impl Client {
    /// `host` (from `-H`), else `BERTH_HOST`, else [`DEFAULT_HOST`].
    pub fn from_host(host: Option<&str>) -> Result<Client, ClientError> {
        let env = std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty());
        let host = host
            .map(str::to_string)
            .or(env)
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let socket = if let Some(p) = host.strip_prefix("unix://") {
            PathBuf::from(p)
        } else if host.starts_with('/') {
            PathBuf::from(&host)
        } else {
            return Err(ClientError::BadHost(host));
        };
        if socket.as_os_str().is_empty() {
            return Err(ClientError::BadHost(host));
        }
        let host = format!("unix://{}", socket.display());
        Ok(Client { host, socket })
    }

    /// `unix:///path`.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    host: self.host.clone(),
                    source,
                })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<Request<ReqBody>, ClientError> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path}"))
            .header(header::HOST, "api.moby.localhost")
            .header(
                header::USER_AGENT,
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        b.body(body).map_err(|e| ClientError::Http(e.to_string()))
    }

    /// Sends a request; statuses ≥ 400 become [`ClientError::Api`] with the daemon's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<Response<hyper::body::Incoming>, ClientError> {
        let req = self.build(method, path, body, content_type, headers)?;
        let mut sender = self.connect().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if resp.status().as_u16() >= 400 {
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<berth_api::ErrorResponse>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Api { status, message });
        }
        Ok(resp)
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .send(Method::GET, path, full(Bytes::new()), None, &[])
            .await?;
        decode(r).await
    }

    /// POST a JSON body (or none) and decode a JSON reply.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let r = self.post(path, body).await?;
        decode(r).await
    }

    /// POST a JSON body (or none); returns the status (204, 304, ...).
    pub async fn post<B: Serialize>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response<hyper::body::Incoming>, ClientError> {
        let (b, ct) = match body {
            Some(b) => (
                full(serde_json::to_vec(b).map_err(|e| ClientError::Decode(e.to_string()))?),
                Some("application/json"),
            ),
            None => (full(Bytes::new()), None),
        };
        self.send(Method::POST, path, b, ct, &[]).await
    }

    /// POST without a body; returns the status code.
    pub async fn post_status(&self, path: &str) -> Result<StatusCode, ClientError> {
        let r = self.post::<()>(path, None).await?;
        Ok(r.status())
    }

    /// DELETE; returns the reply body.
    pub async fn delete(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let r = self
            .send(Method::DELETE, path, full(Bytes::new()), None, &[])
            .await?;
        Ok(r.into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes()
            .to_vec())
    }

    /// A streamed GET (logs, stats, events).
    pub async fn get_stream(&self, path: &str) -> Result<BodyStream, ClientError> {
        let r = self
            .send(Method::GET, path, full(Bytes::new()), None, &[])
            .await?;
        Ok(stream_of(r))
    }

    /// A streamed POST (pull progress, wait).
    pub async fn post_stream(
        &self,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<BodyStream, ClientError> {
        let r = self
            .send(Method::POST, path, body, content_type, headers)
            .await?;
        Ok(stream_of(r))
    }

    /// Any method (`"HEAD"`, `"PUT"`, ...): the reply's headers (lowercase names) and its
    /// body as a stream (`cp`: the stat header of the archive endpoints).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> Result<(Vec<(String, String)>, BodyStream), ClientError> {
        let m = Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Http(format!("method {method}: {e}")))?;
        let r = self.send(m, path, body, content_type, &[]).await?;
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok((headers, stream_of(r)))
    }

    /// `HEAD /_ping`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        let req = Request::builder()
            .method(Method::HEAD)
            .uri("/_ping")
            .header(header::HOST, "api.moby.localhost")
            .body(full(Bytes::new()))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let mut s = self.connect().await?;
        let r = s
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Api {
                status: r.status().as_u16(),
                message: "ping failed".into(),
            })
        }
    }

    /// POST with `Connection: Upgrade` / `Upgrade: tcp`; on `101` the connection becomes a
    /// raw duplex (attach, exec start).
    pub async fn hijack(
        &self,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<Hijacked, ClientError> {
        let (b, ct) = match json_body {
            Some(b) => (full(b), "application/json"),
            None => (full(Bytes::new()), "text/plain"),
        };
        let mut req = self.build(Method::POST, path, b, Some(ct), &[])?;
        req.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        req.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        let mut sender = self.connect().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<berth_api::ErrorResponse>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Http(format!(
                "unable to upgrade to tcp, received {}",
                status.as_u16()
            )));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(TokioIo::new(up))
    }

    /// A streamed request body from a reader (import, load).
    pub fn body_from_reader<R>(reader: R) -> ReqBody
    where
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    {
        use tokio::io::AsyncReadExt;
        let s = futures_util::stream::unfold(reader, |mut r| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        });
        BodyExt::boxed(http_body_util::StreamBody::new(s))
    }

    /// A JSON body.
    pub fn json_body<B: Serialize>(b: &B) -> ReqBody {
        full(serde_json::to_vec(b).unwrap_or_default())
    }

    /// An empty body.
    pub fn empty_body() -> ReqBody {
        full(Bytes::new())
    }
}

fn stream_of(r: Response<hyper::body::Incoming>) -> BodyStream {
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    BodyStream::new(r.into_body(), ct)
}

async fn decode<T: DeserializeOwned>(r: Response<hyper::body::Incoming>) -> Result<T, ClientError> {
    let bytes = r
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Client::from_host(Some("unix:///tmp/x.sock"))
                .unwrap()
                .host(),
            "unix:///tmp/x.sock"
        );
        assert_eq!(
            Client::from_host(Some("/tmp/y.sock")).unwrap().host(),
            "unix:///tmp/y.sock"
        );
        assert!(Client::from_host(Some("tcp://1.2.3.4:2375")).is_err());
        assert!(Client::from_host(Some("unix://")).is_err());
    }

    #[tokio::test]
    async fn connect_error_says_how_to_start_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let c =
            Client::from_host(Some(&format!("unix://{}/none.sock", dir.path().display()))).unwrap();
        let e = c.ping().await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot connect to the berth daemon at unix://"),
            "{msg}"
        );
        assert!(
            msg.ends_with("is it running? start it with `berth daemon`"),
            "{msg}"
        );
    }
}
