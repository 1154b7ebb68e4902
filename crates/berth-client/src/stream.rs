//! Streamed reply bodies and hijacked connections.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::ClientError;

/// A reply body read chunk by chunk (logs, stats, events, pull progress).
#[derive(Debug)]
pub struct BodyStream {
    body: Incoming,
    buf: Vec<u8>,
    /// The reply's `Content-Type`.
    pub content_type: String,
}

impl BodyStream {
    pub(crate) fn new(body: Incoming, content_type: String) -> Self {
        BodyStream {
            body,
            buf: Vec::new(),
            content_type,
        }
    }

    /// The next chunk of bytes; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if !self.buf.is_empty() {
            return Ok(Some(Bytes::from(std::mem::take(&mut self.buf))));
        }
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if !d.is_empty() {
                            return Ok(Some(d));
                        }
                    }
                }
            }
        }
    }

    /// The next JSON value of a stream of concatenated JSON values; `None` at the end.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ClientError> {
        loop {
            let start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
            if let Some(s) = start {
                let mut it = serde_json::Deserializer::from_slice(&self.buf[s..]).into_iter::<T>();
                match it.next() {
                    Some(Ok(v)) => {
                        let used = s + it.byte_offset();
                        self.buf.drain(..used);
                        return Ok(Some(v));
                    }
                    Some(Err(e)) if !e.is_eof() => return Err(ClientError::Decode(e.to_string())),
                    _ => {}
                }
            } else {
                self.buf.clear();
            }
            match self.body.frame().await {
                None => {
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        return Ok(None);
                    }
                    return Err(ClientError::Decode(
                        "truncated JSON at the end of the stream".into(),
                    ));
                }
                Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }

    /// Everything left, as bytes.
    pub async fn collect(mut self) -> Result<Vec<u8>, ClientError> {
        let mut out = std::mem::take(&mut self.buf);
        while let Some(c) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }
}

/// A hijacked connection: write stdin, read output; `shutdown()` on it half-closes.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;
