//! Root tier, the daemon in-process: a `PUT /containers/{id}/archive` whose client stops
//! sending mid-body must not hold the container: `stop` and `rm -f` answer at once (the
//! body is read to its end before the extraction takes the container's lifecycle lock),
//! and a whole upload, small or spilled to a file, is still extracted.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One request with a body; (status, body). Bounded: a daemon that does not answer fails
/// the test instead of hanging it.
async fn req(sock: &Path, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = req_head(sock, method, path, ctype, body).await;
    (status, body)
}

/// Like [`req`], with the response head too.
async fn req_head(
    sock: &Path,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, String, String) {
    common::raw_request(sock, method, path, ctype, body, Duration::from_secs(20)).await
}

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = berth_testkit::images::LayerBuilder::new();
    for (path, data) in files {
        b.file(path, 0o755, data);
    }
    b.finish()
}

#[test]
fn a_stalled_upload_does_not_hold_stop_or_rm() {
    common::in_process(a_stalled_upload_does_not_hold_stop_or_rm_body());
}

async fn a_stalled_upload_does_not_hold_stop_or_rm_body() {
    if !berth_testkit::require_root("a_stalled_upload_does_not_hold_stop_or_rm") {
        return;
    }
    // `opened` keeps its roots alive to the end of the test.
    let Some(opened) = common::open_state().await else {
        return;
    };
    let sock = opened.sock.clone();
    let listener = berth_daemon::server::bind(&sock).expect("bind");
    let server = tokio::spawn(berth_daemon::server::serve(listener, opened.state));

    // An image (imported from a one-file tar) and two containers made from it, never started.
    let image = tar_of(&[("x", b"#!/bin/false\n".to_vec())]);
    let (st, body) = req(
        &sock,
        "POST",
        "/v1.47/images/create?fromSrc=-&repo=stall&tag=1",
        "application/x-tar",
        &image,
    )
    .await;
    assert_eq!(st, 200, "import: {body}");
    for name in ["stalled", "fed"] {
        let (st, body) = req(
            &sock,
            "POST",
            &format!("/v1.47/containers/create?name={name}"),
            "application/json",
            br#"{"Image":"stall:1","Cmd":["/x"]}"#,
        )
        .await;
        assert_eq!(st, 201, "create {name}: {body}");
    }

    // A whole upload is extracted: a small one, and one big enough to spill to a file.
    let big = vec![b'z'; berth_daemon::spool::IN_MEMORY + 12345];
    let upload = tar_of(&[("small", b"hi\n".to_vec()), ("big", big)]);
    let (st, body) = req(
        &sock,
        "PUT",
        "/v1.47/containers/fed/archive?path=/",
        "application/x-tar",
        &upload,
    )
    .await;
    assert_eq!(st, 200, "put: {body}");
    for (p, size) in [
        ("small", 3),
        ("big", berth_daemon::spool::IN_MEMORY + 12345),
    ] {
        let (st, head, _) = req_head(
            &sock,
            "HEAD",
            &format!("/v1.47/containers/fed/archive?path=/{p}"),
            "application/json",
            b"",
        )
        .await;
        assert_eq!(st, 200, "stat /{p}: {head}");
        let b64 = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(": ")?;
                k.eq_ignore_ascii_case("x-docker-container-path-stat")
                    .then_some(v)
            })
            .unwrap_or_else(|| panic!("no stat header: {head}"));
        let json = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim())
            .expect("base64 stat");
        let stat: serde_json::Value = serde_json::from_slice(&json).expect("json stat");
        assert_eq!(stat["size"], size, "/{p}: {stat}");
    }

    // The stalled client: headers for a 64 KiB tar, the first 1 KiB of it, then nothing.
    let stalled_tar = tar_of(&[("late", vec![b'l'; 60 << 10])]);
    let mut stalled = UnixStream::connect(&sock).await.expect("connect");
    let head = format!(
        "PUT /v1.47/containers/stalled/archive?path=/ HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        stalled_tar.len()
    );
    stalled.write_all(head.as_bytes()).await.expect("head");
    stalled
        .write_all(&stalled_tar[..1024])
        .await
        .expect("part of the body");
    // Give the daemon time to be inside the handler, reading the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t = Instant::now();
    let (st, body) = req(
        &sock,
        "POST",
        "/v1.47/containers/stalled/stop?t=1",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(st, 304, "stop of a created container: {body}");
    let (st, body) = req(
        &sock,
        "DELETE",
        "/v1.47/containers/stalled?force=1",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(st, 204, "rm -f: {body}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop and rm waited {:?} behind the stalled upload",
        t.elapsed()
    );

    // The client resumes: the container is gone, so the upload is refused, not extracted.
    stalled
        .write_all(&stalled_tar[1024..])
        .await
        .expect("rest of the body");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut out))
        .await
        .expect("a reply once the body is complete")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("No such container: "), "{text}");

    let (st, _) = req(
        &sock,
        "DELETE",
        "/v1.47/containers/fed?force=1",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(st, 204);
    server.abort();
}
