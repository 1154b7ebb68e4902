//! The daemon in-process on a temporary socket: version prefixes, headers, error statuses
//! and messages for bad input, and requests that need no image or container.

mod common;

use std::path::Path;
use std::time::Duration;

struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn req(sock: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    let b = body.unwrap_or("").as_bytes();
    let limit = Duration::from_secs(10);
    let (status, head, rest) =
        common::raw_request(sock, method, path, "application/json", b, limit).await;
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        // One chunk is enough for these small replies.
        rest.split_once("\r\n")
            .map(|(_, r)| r.split("\r\n").next().unwrap_or("").to_string())
            .unwrap_or_default()
    } else {
        rest.to_string()
    };
    Reply {
        status,
        head: head.to_lowercase(),
        body,
    }
}

#[test]
fn api_surface_without_containers() {
    common::in_process(api_surface_without_containers_body());
}

async fn api_surface_without_containers_body() {
    // `opened` keeps its roots alive to the end of the test.
    let Some(opened) = common::open_state().await else {
        return;
    };
    let sock = opened.sock.clone();
    let listener = berth_daemon::server::bind(&sock).expect("bind");
    let mode = std::fs::metadata(&sock)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o660));
    let server = tokio::spawn(berth_daemon::server::serve(listener, opened.state));

    let r = req(&sock, "GET", "/_ping", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    for h in [
        "api-version: 1.47",
        "ostype: linux",
        "server: docker/",
        "cache-control: no-cache",
    ] {
        assert!(r.head.contains(h), "{h} missing in {}", r.head);
    }
    let r = req(&sock, "HEAD", "/_ping", None).await;
    assert_eq!(r.status, 200);
    let r = req(&sock, "GET", "/v1.99/version", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        r#"{"message":"client version 1.99 is too new. Maximum supported API version is 1.47"}"#
    );
    assert!(r.head.contains("api-version: 1.47"));
    let r = req(&sock, "GET", "/v1.23/version", None).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("too old"), "{}", r.body);
    for p in ["/version", "/v1.24/version", "/v1.47/version"] {
        let r = req(&sock, "GET", p, None).await;
        assert_eq!(r.status, 200, "{p}");
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["ApiVersion"], "1.47");
    }
    let r = req(&sock, "GET", "/v1.47/info", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = req(&sock, "GET", "/v1.47/containers/nosuch/json", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"message":"No such container: nosuch"}"#)
    );
    let r = req(
        &sock,
        "POST",
        "/v1.47/containers/create",
        Some("{\"Image\": "),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.starts_with("{\"message\":\"invalid JSON body"),
        "{}",
        r.body
    );
    let r = req(&sock, "POST", "/v1.47/containers/create", None).await;
    assert_eq!(r.status, 400);
    let r = req(
        &sock,
        "POST",
        "/v1.47/containers/create",
        Some(r#"{"Image":"nosuch:1"}"#),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("No such image"), "{}", r.body);
    let r = req(&sock, "GET", "/v1.47/containers/json?filters=%7Bbad", None).await;
    assert_eq!(r.status, 400);
    let r = req(&sock, "GET", "/v1.47/containers/json?all=1", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "[]"));
    let r = req(&sock, "GET", "/v1.47/no/such/route", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"message":"page not found"}"#)
    );
    let r = req(&sock, "POST", "/v1.47/containers/nosuch/wait", None).await;
    assert_eq!(r.status, 404);
    let r = req(&sock, "GET", "/v1.47/exec/nosuch/json", None).await;
    assert_eq!(r.status, 404);
    // A query Go's url.ParseQuery refuses is a 400 in its words (moby's ParseForm).
    let r = req(
        &sock,
        "GET",
        "/v1.47/containers/json?all=1&filters=%zz",
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"message":"invalid URL escape \"%zz\""}"#)
    );
    let r = req(&sock, "GET", "/v1.47/containers/json?all=1;limit=2", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"message":"invalid semicolon separator in query"}"#)
    );
    let r = req(
        &sock,
        "POST",
        "/v1.47/containers/nosuch/attach?stream=1&stdout=1",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = req(&sock, "GET", "/v1.47/networks", None).await;
    let nets: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    let names: Vec<&str> = nets
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["Name"].as_str())
        .collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    // Volumes: create, inspect, remove, then 404.
    let body = r#"{"Name":"apitest","Labels":{"a":"b"}}"#;
    let r = req(&sock, "POST", "/v1.47/volumes/create", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = req(&sock, "GET", "/v1.47/volumes/apitest", None).await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(
        (v["Driver"].as_str(), v["Labels"]["a"].as_str()),
        (Some("local"), Some("b"))
    );
    let r = req(&sock, "DELETE", "/v1.47/volumes/apitest", None).await;
    assert_eq!(r.status, 204);
    let r = req(&sock, "GET", "/v1.47/volumes/apitest", None).await;
    assert_eq!(r.status, 404);
    // Still alive.
    let r = req(&sock, "GET", "/_ping", None).await;
    assert_eq!(r.status, 200);
    server.abort();
}
