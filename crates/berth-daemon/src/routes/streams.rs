//! Streaming reply bodies: a channel of chunks becomes a body whose headers go out at once.

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// A body fed from a channel; ends when every sender is dropped.
pub fn body_from_channel(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    Body::from_stream(stream)
}

/// A streaming reply with a content type.
pub fn streaming(
    content_type: &'static str,
    rx: mpsc::Receiver<Bytes>,
) -> axum::response::Response {
    axum::response::Response::builder()
        .status(200)
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(body_from_channel(rx))
        .unwrap_or_else(|_| axum::response::Response::new(Body::empty()))
}

/// One JSON value followed by a newline.
pub fn json_line<T: serde::Serialize>(v: &T) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}
