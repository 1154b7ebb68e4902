//! Root tier: pulls from a real `docker-registry` on 127.0.0.1 (started by the test), images
//! built at test time from busybox-static. Overlay mounts, whiteouts and trusted xattrs need root.

mod common;

use std::os::unix::fs::MetadataExt;

use berth_image::{ImageError, LayerStatus, Platform, PullEvent, PullOptions};
use berth_testkit::images::{self, Compression, Format};
use berth_testkit::registry::{Fault, Proxy, RegistryGuard};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn pull_busybox_mount_and_run() {
    if !berth_testkit::require_root("pull_busybox_mount_and_run") {
        return;
    }
    let (reg, reference) = images::busybox_in_registry().unwrap();
    let (dir, s) = store();
    let ev = Events::default();
    let rec = s
        .pull(&r(&reference), &PullOptions::default(), &ev.sink())
        .await
        .unwrap();
    let img = images::busybox_image().unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    assert_eq!(rec.repo_tags, vec![format!("{}/busybox:latest", reg.addr)]);
    assert_eq!(rec.repo_digests.len(), 1);
    assert_eq!(
        rec.config.config.cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].diff_id.to_string(), img.layers[0].diff_id());
    assert!(rec.size > 500_000, "size {}", rec.size);
    let all = ev.all();
    assert!(matches!(&all[0], PullEvent::PullingFrom { tag, .. } if tag == "latest"));
    assert!(all.iter().any(|e| matches!(
        e,
        PullEvent::Layer {
            status: LayerStatus::PullComplete,
            ..
        }
    )));
    assert!(
        ev.statuses()[0].starts_with("Downloaded newer image for"),
        "{:?}",
        ev.statuses()
    );
    // per-layer states in Docker's order (repeats of Downloading/Extracting collapsed)
    let mut order: Vec<&'static str> = Vec::new();
    for e in &all {
        if let PullEvent::Layer { status, .. } = e {
            let st = status.docker_status();
            if order.last() != Some(&st) {
                order.push(st);
            }
        }
    }
    assert_eq!(
        order,
        vec![
            "Pulling fs layer",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete"
        ]
    );
    // lookups
    assert_eq!(s.get(&reference).unwrap().id, rec.id);
    assert_eq!(s.get(&rec.id.to_string()).unwrap().id, rec.id);
    assert_eq!(s.get(&rec.id.hex()[..12]).unwrap().id, rec.id);
    assert_eq!(s.get(&rec.repo_digests[0]).unwrap().id, rec.id);
    assert!(matches!(s.get("nope:latest"), Err(ImageError::NotFound(_))));
    assert_eq!(s.list().unwrap().len(), 1);

    // a container rootfs: busybox runs from the overlay, writes land in upper
    let m = s.prepare_container_rootfs("ctr1", &rec).unwrap();
    assert_eq!(m.lowerdirs.len(), 1);
    {
        let mounted = mount_at(&m, dir.path());
        let bb = std::fs::read(mounted.0.join("bin/busybox")).unwrap();
        assert_eq!(bb, std::fs::read("/bin/busybox").unwrap());
        let out = std::process::Command::new("chroot")
            .arg(&mounted.0)
            .args([
                "/bin/sh",
                "-c",
                "echo hi > /tmp/f && cat /tmp/f && ls /bin | wc -l",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("hi\n"), "{text}");
        assert!(m.upper.join("tmp/f").exists());
        assert!(!s
            .snapshots()
            .fs_dir(&rec.layers[0].chain_id)
            .join("tmp/f")
            .exists());
    }
    s.remove_container_rootfs("ctr1").unwrap();
    assert!(!m.upper.exists());
}

async fn multilayer(format: Format, top: Compression) {
    let reg = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(top).unwrap();
    images::push(&reg.addr, "multi", "v1", &img, format).unwrap();
    let (dir, s) = store();
    let rec = s
        .pull(
            &r(&format!("{}/multi:v1", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    assert_eq!(rec.layers.len(), 3);
    let l = |i: usize| s.snapshots().fs_dir(&rec.layers[i].chain_id);
    // overlay forms in the layer directories
    assert!(is_whiteout(&l(1).join("data/remove-me")));
    assert!(!l(1).join("data/.wh.remove-me").exists());
    assert!(opaque(&l(1).join("olddir")));
    assert!(opaque(&l(2).join("newdir")));
    assert!(!l(2).join("newdir/.wh..wh..opq").exists());
    assert!(!opaque(&l(0).join("olddir")));
    let keep = std::fs::metadata(l(0).join("data/keep")).unwrap();
    assert_eq!(
        keep.ino(),
        std::fs::metadata(l(0).join("data/keep-link"))
            .unwrap()
            .ino()
    );
    let x = std::fs::metadata(l(2).join("newdir/x")).unwrap();
    assert_eq!(
        (x.uid(), x.gid(), x.mode() & 0o7777, x.mtime()),
        (1000, 1000, 0o640, images::MTIME as i64)
    );
    assert_eq!(
        std::fs::metadata(l(2).join("newdir")).unwrap().mode() & 0o7777,
        0o750
    );
    // the merged view has exactly the expected files
    let m = s.prepare_container_rootfs("ml", &rec).unwrap();
    let mounted = mount_at(&m, dir.path());
    assert_eq!(
        tree(&mounted.0),
        images::MULTILAYER_FILES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read_to_string(mounted.0.join("olddir/c")).unwrap(),
        "c2\n"
    );
    assert_eq!(
        std::fs::read_link(mounted.0.join("etc/hostname"))
            .unwrap()
            .to_str(),
        Some("/data/keep")
    );
    // deleting a lower file through the mount leaves a whiteout in upper, the layer intact
    std::fs::remove_file(mounted.0.join("data/keep")).unwrap();
    assert!(is_whiteout(&m.upper.join("data/keep")));
    assert!(l(0).join("data/keep").exists());
    drop(mounted);
    s.remove_container_rootfs("ml").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn multilayer_whiteouts_oci_zstd() {
    if berth_testkit::require_root("multilayer_whiteouts_oci_zstd") {
        multilayer(Format::Oci, Compression::Zstd).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multilayer_whiteouts_oci_uncompressed() {
    if berth_testkit::require_root("multilayer_whiteouts_oci_uncompressed") {
        multilayer(Format::Oci, Compression::None).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multilayer_whiteouts_docker_schema2() {
    if berth_testkit::require_root("multilayer_whiteouts_docker_schema2") {
        multilayer(Format::Docker, Compression::Gzip).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn second_pull_downloads_nothing() {
    if !berth_testkit::require_root("second_pull_downloads_nothing") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(Compression::Gzip).unwrap();
    images::push(&reg.addr, "multi", "v1", &img, Format::Oci).unwrap();
    let proxy = Proxy::start(&reg.addr, None, Fault::None).unwrap();
    let (_d, s) = store();
    let reference = r(&format!("{}/multi:v1", proxy.addr));
    s.pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(proxy.blob_gets(), 4, "{:?}", proxy.requests()); // 3 layers + config
    proxy.clear_log();
    let ev = Events::default();
    let rec = s
        .pull(&reference, &PullOptions::default(), &ev.sink())
        .await
        .unwrap();
    assert_eq!(proxy.blob_gets(), 0, "{:?}", proxy.requests());
    assert!(
        proxy.requests().iter().all(|r| r.starts_with("HEAD ")),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        ev.statuses(),
        vec![format!("Image is up to date for {}/multi:v1", proxy.addr)]
    );
    assert_eq!(rec.id.to_string(), img.id());

    // another image sharing the base layers: only the new layer and config are fetched
    let mut img2 = images::multilayer_image(Compression::Gzip).unwrap();
    let mut lb = images::LayerBuilder::new();
    lb.file("extra", 0o644, b"e\n");
    let extra = lb.finish();
    img2 = images::TestImage::new(
        vec![
            img2.layers[0].clone(),
            img2.layers[1].clone(),
            images::TestLayer::new(extra, Compression::Gzip),
        ],
        images::busybox_config(),
        images::host_arch(),
    );
    images::push(&reg.addr, "multi", "v2", &img2, Format::Oci).unwrap();
    proxy.clear_log();
    let ev = Events::default();
    s.pull(
        &r(&format!("{}/multi:v2", proxy.addr)),
        &PullOptions::default(),
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(proxy.blob_gets(), 2, "{:?}", proxy.requests());
    let exists = ev
        .all()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                PullEvent::Layer {
                    status: LayerStatus::AlreadyExists,
                    ..
                }
            )
        })
        .count();
    assert_eq!(exists, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_list_selects_platform() {
    if !berth_testkit::require_root("manifest_list_selects_platform") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let host = images::host_arch();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let mk = |arch: &str| {
        let mut l = images::LayerBuilder::new();
        l.dir("etc", 0o755).file("etc/arch", 0o644, arch.as_bytes());
        images::TestImage::new(
            vec![images::TestLayer::new(l.finish(), Compression::Gzip)],
            images::busybox_config(),
            arch,
        )
    };
    let (a, b) = (mk(host), mk(other));
    for (tag, f) in [("oci", Format::Oci), ("docker", Format::Docker)] {
        let list_digest = images::push_index(
            &reg.addr,
            "multiarch",
            tag,
            &[(&b, other, None), (&a, host, None)],
            f,
        )
        .unwrap();
        let (_d, s) = store();
        let rec = s
            .pull(
                &r(&format!("{}/multiarch:{tag}", reg.addr)),
                &PullOptions::default(),
                &|_| {},
            )
            .await
            .unwrap();
        assert_eq!(rec.id.to_string(), a.id(), "{tag}");
        assert_eq!(
            rec.repo_digests,
            vec![format!("{}/multiarch@{list_digest}", reg.addr)]
        );
        let opts = PullOptions {
            platform: Some(Platform::parse(&format!("linux/{other}")).unwrap()),
            ..Default::default()
        };
        let rec = s
            .pull(&r(&format!("{}/multiarch:{tag}", reg.addr)), &opts, &|_| {})
            .await
            .unwrap();
        assert_eq!(rec.id.to_string(), b.id());
        let opts = PullOptions {
            platform: Some(Platform::parse("linux/s390x").unwrap()),
            ..Default::default()
        };
        let e = s
            .pull(&r(&format!("{}/multiarch:{tag}", reg.addr)), &opts, &|_| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no manifest for platform linux/s390x"), "{e}");
        // by digest
        let rec = s
            .pull(
                &r(&format!("{}/multiarch@{list_digest}", reg.addr)),
                &PullOptions::default(),
                &|_| {},
            )
            .await
            .unwrap();
        assert_eq!(rec.id.to_string(), a.id());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_pull_resumes_with_range() {
    if !berth_testkit::require_root("interrupted_pull_resumes_with_range") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "busybox", "latest", &img, Format::Oci).unwrap();
    let cut = 300_000;
    assert!(img.layers[0].blob.len() > cut * 2);
    let proxy = Proxy::start(&reg.addr, None, Fault::CutBlobOnce(cut)).unwrap();
    let (_d, s) = store();
    let rec = s
        .pull(
            &r(&format!("{}/busybox", proxy.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    let layer = images::sha256(&img.layers[0].blob);
    let gets: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET ") && r.contains(&layer))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(!gets[0].contains("Range"));
    assert!(
        gets[1].ends_with(&format!("[Range: bytes={cut}-]")),
        "{gets:?}"
    );
    assert!(std::fs::read_dir(s.root().join("ingest"))
        .unwrap()
        .next()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_auth_and_bad_credentials() {
    if !berth_testkit::require_root("token_auth_and_bad_credentials") {
        return;
    }
    use berth_testkit::registry::TokenAuth;
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "private/bb", "latest", &img, Format::Docker).unwrap();
    let proxy = Proxy::start(
        &reg.addr,
        Some(TokenAuth {
            user: Some(("alice".into(), "s3cret".into())),
        }),
        Fault::None,
    )
    .unwrap();
    let reference = r(&format!("{}/private/bb", proxy.addr));

    let (_d, s) = store();
    let e = s
        .pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("authentication required"), "{e}");
    assert_eq!(e.kind(), berth_image::ErrorKind::Unauthorized);
    let bad = PullOptions {
        credentials: Some(berth_image::Credentials {
            username: "alice".into(),
            password: "wrong".into(),
        }),
        ..Default::default()
    };
    let e = s.pull(&reference, &bad, &|_| {}).await.unwrap_err();
    assert!(
        e.to_string().contains("incorrect username or password"),
        "{e}"
    );
    assert!(s.list().unwrap().is_empty());

    // credentials from a Docker config.json, as berth login writes it
    let d = tempfile::tempdir().unwrap();
    let auth_file = d.path().join("config.json");
    let good = berth_image::Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    berth_image::registry::auth::store(&auth_file, &proxy.addr, Some(&good)).unwrap();
    let (_d2, s) = store_with(berth_image::RegistryConfig {
        insecure: vec![],
        auth_file: Some(auth_file),
        ..Default::default()
    });
    let rec = s
        .pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    let reqs = proxy.requests();
    assert!(
        reqs.iter().any(|r| r
            .starts_with("GET /token?service=berth-test&scope=repository%3Aprivate%2Fbb%3Apull")),
        "{reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_checks_and_stores_credentials() {
    if !berth_testkit::require_root("login_checks_and_stores_credentials") {
        return;
    }
    use berth_image::registry::auth;
    use berth_testkit::registry::TokenAuth;
    let reg = RegistryGuard::start().unwrap();
    let proxy = Proxy::start(
        &reg.addr,
        Some(TokenAuth {
            user: Some(("carol".into(), "pw".into())),
        }),
        Fault::None,
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("config.json");
    let (_d, s) = store_with(berth_image::RegistryConfig {
        insecure: vec![],
        auth_file: Some(file.clone()),
        ..Default::default()
    });
    let bad = berth_image::Credentials {
        username: "carol".into(),
        password: "nope".into(),
    };
    let e = s.registry().login(&proxy.addr, &bad).await.unwrap_err();
    assert!(
        e.to_string().contains("incorrect username or password"),
        "{e}"
    );
    assert_eq!(auth::lookup(&file, &proxy.addr).unwrap(), None);
    let good = berth_image::Credentials {
        username: "carol".into(),
        password: "pw".into(),
    };
    s.registry().login(&proxy.addr, &good).await.unwrap();
    assert_eq!(auth::lookup(&file, &proxy.addr).unwrap(), Some(good));
    // a registry without auth accepts any login
    s.registry().login(&reg.addr, &bad).await.unwrap();
    s.registry().logout(&proxy.addr).unwrap();
    assert_eq!(auth::lookup(&file, &proxy.addr).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_share_downloads() {
    if !berth_testkit::require_root("concurrent_pulls_share_downloads") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(Compression::Gzip).unwrap();
    images::push(&reg.addr, "multi", "v1", &img, Format::Oci).unwrap();
    images::push(&reg.addr, "multi", "v2", &img, Format::Docker).unwrap();
    let proxy = Proxy::start(&reg.addr, None, Fault::None).unwrap();
    let (_d, s) = store();
    let (a, b) = (
        r(&format!("{}/multi:v1", proxy.addr)),
        r(&format!("{}/multi:v2", proxy.addr)),
    );
    let opts = PullOptions::default();
    let (x, y) = tokio::join!(s.pull(&a, &opts, &|_| {}), s.pull(&b, &opts, &|_| {}));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.id, y.id);
    let layer_gets = img
        .layers
        .iter()
        .map(|l| images::sha256(&l.blob))
        .map(|d| {
            proxy
                .requests()
                .iter()
                .filter(|r| r.starts_with("GET ") && r.contains(&d))
                .count()
        })
        .collect::<Vec<_>>();
    assert_eq!(layer_gets, vec![1, 1, 1], "{:?}", proxy.requests());
    let rec = s.get(&x.id.to_string()).unwrap();
    assert_eq!(rec.repo_tags.len(), 2);
    assert_eq!(rec.repo_digests.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_registry_with_certs_dir_and_tls_errors() {
    if !berth_testkit::require_root("https_registry_with_certs_dir_and_tls_errors") {
        return;
    }
    let plain = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&plain.addr, "busybox", "latest", &img, Format::Oci).unwrap();
    let tls = plain.tls_twin().unwrap();
    let reference = r(&format!("{}/busybox", tls.addr));
    // trusted through <certs_dir>/<host:port>/ca.crt: pulled over HTTPS
    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(certs.path().join(&tls.addr)).unwrap();
    std::fs::copy(
        tls.cert().unwrap(),
        certs.path().join(&tls.addr).join("ca.crt"),
    )
    .unwrap();
    let cfg = berth_image::RegistryConfig {
        certs_dir: Some(certs.path().to_path_buf()),
        ..Default::default()
    };
    let (_d, s) = store_with(cfg);
    assert!(s.registry().base_url(&tls.addr).starts_with("https://"));
    let rec = s
        .pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    // HTTPS without trusting the certificate: a TLS error that says so
    let untrusted = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(untrusted.path().join(&tls.addr)).unwrap();
    let cfg = berth_image::RegistryConfig {
        certs_dir: Some(untrusted.path().to_path_buf()),
        ..Default::default()
    };
    let (_d2, s2) = store_with(cfg);
    let e = s2
        .pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TLS error"), "{e}");
    // plain HTTP to the TLS port (loopback default): the registry's 400 is reported
    let (_d3, s3) = store();
    let e = s3
        .pull(&reference, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("400"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_to_blob_storage_drop_authorization() {
    if !berth_testkit::require_root("redirects_to_blob_storage_drop_authorization") {
        return;
    }
    use berth_testkit::registry::TokenAuth;
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "private/bb", "latest", &img, Format::Oci).unwrap();
    // "blob storage" on another host (127.0.0.2), the registry front on 127.0.0.1
    let cdn = Proxy::start_on("127.0.0.2", &reg.addr, None, Fault::None).unwrap();
    let front = Proxy::start(
        &reg.addr,
        Some(TokenAuth {
            user: Some(("dave".into(), "pw".into())),
        }),
        Fault::RedirectBlobs(cdn.addr.parse().unwrap()),
    )
    .unwrap();
    let (_d, s) = store();
    let opts = PullOptions {
        credentials: Some(berth_image::Credentials {
            username: "dave".into(),
            password: "pw".into(),
        }),
        ..Default::default()
    };
    let rec = s
        .pull(&r(&format!("{}/private/bb", front.addr)), &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    let front_blobs: Vec<String> = front
        .requests()
        .into_iter()
        .filter(|r| r.contains("/blobs/"))
        .collect();
    assert!(
        !front_blobs.is_empty() && front_blobs.iter().all(|r| r.contains("[Authorization]")),
        "{front_blobs:?}"
    );
    let cdn_reqs = cdn.requests();
    assert_eq!(cdn.blob_gets(), 2, "{cdn_reqs:?}"); // config + layer
    assert!(
        cdn_reqs.iter().all(|r| !r.contains("[Authorization]")),
        "credentials leaked: {cdn_reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_bearer_tokens() {
    if !berth_testkit::require_root("anonymous_bearer_tokens") {
        return;
    }
    use berth_testkit::registry::TokenAuth;
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "library/busybox", "latest", &img, Format::Docker).unwrap();
    // like Docker Hub: every request needs a token, tokens are handed out without credentials
    let proxy = Proxy::start(&reg.addr, Some(TokenAuth { user: None }), Fault::None).unwrap();
    let (_d, s) = store();
    let rec = s
        .pull(
            &r(&format!("{}/library/busybox", proxy.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    let reqs = proxy.requests();
    let tokens = reqs.iter().filter(|r| r.starts_with("GET /token")).count();
    assert_eq!(tokens, 1, "one token, cached for the whole pull: {reqs:?}");
    assert!(
        reqs.iter()
            .filter(|r| r.starts_with("GET /token"))
            .all(|r| !r.contains("[Authorization]")),
        "{reqs:?}"
    );
}
