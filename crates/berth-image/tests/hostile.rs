//! Root tier: hostile layers and registries give clear errors and write nothing outside the
//! store (tar escapes through `..`, absolute paths, symlinks and hardlinks; corrupt,
//! truncated and non-JSON blobs).

mod common;

use std::path::Path;

use berth_image::{ImageError, PullOptions, Snapshots};
use berth_testkit::images::{self, Compression, Format, LayerBuilder, TestImage, TestLayer};
use berth_testkit::registry::{Fault, Proxy, RegistryGuard};
use common::*;

/// A store in `<tmp>/store` and an `outside` directory next to it that must stay empty.
struct Sandbox {
    dir: tempfile::TempDir,
    snaps: Snapshots,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-hostile-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let snaps = Snapshots::open(&dir.path().join("store")).unwrap();
        Sandbox { dir, snaps }
    }
    fn outside(&self) -> std::path::PathBuf {
        self.dir.path().join("outside")
    }
    fn apply(
        &self,
        tar: Vec<u8>,
    ) -> Result<berth_image::ChainId, berth_image::snapshot::SnapshotError> {
        self.snaps
            .apply_layer(None, &mut &tar[..], None)
            .map(|(c, _)| c)
    }
    fn assert_clean(&self) {
        assert_eq!(
            tree(&self.outside()),
            Vec::<String>::new(),
            "something was written outside the store"
        );
        // no snapshot committed, no temp dir left behind
        let left: Vec<String> = tree(&self.dir.path().join("store/snapshots"));
        assert!(left.is_empty(), "left in snapshots: {left:?}");
    }
}

fn rel_to_outside(sb: &Sandbox, depth: usize) -> String {
    // from <store>/snapshots/.tmp-x/fs/<entry>, climb to <tmp> then into outside
    let _ = sb;
    format!("{}outside", "../".repeat(depth))
}

#[test]
fn dotdot_entries_are_refused() {
    if !berth_testkit::require_root("dotdot_entries_are_refused") {
        return;
    }
    let sb = Sandbox::new();
    for depth in [1, 4, 5, 6, 12] {
        let mut l = LayerBuilder::new();
        l.file("ok", 0o644, b"ok").file(
            &format!("{}/pwned", rel_to_outside(&sb, depth)),
            0o644,
            b"x",
        );
        let e = sb.apply(l.finish()).unwrap_err().to_string();
        assert!(e.contains("escapes the layer directory"), "{e}");
    }
    let mut l = LayerBuilder::new();
    l.file("a/../../../outside/pwned", 0o644, b"x");
    let e = sb.apply(l.finish()).unwrap_err().to_string();
    assert!(e.contains("escapes the layer directory"), "{e}");
    sb.assert_clean();
}

#[test]
fn absolute_paths_stay_inside_the_layer() {
    if !berth_testkit::require_root("absolute_paths_stay_inside_the_layer") {
        return;
    }
    let sb = Sandbox::new();
    let target = sb.outside().join("abs-pwned");
    let mut l = LayerBuilder::new();
    l.file(target.to_str().unwrap(), 0o644, b"x");
    let chain = sb.apply(l.finish()).unwrap();
    assert!(!target.exists());
    let inside = sb
        .snaps
        .fs_dir(&chain)
        .join(target.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside).unwrap(), b"x");
    assert_eq!(tree(&sb.outside()), Vec::<String>::new());
}

#[test]
fn symlink_escapes_are_contained() {
    if !berth_testkit::require_root("symlink_escapes_are_contained") {
        return;
    }
    let sb = Sandbox::new();
    let out = sb.outside();
    let cases: Vec<Vec<u8>> = vec![
        // absolute symlink to the outside dir, then a file through it
        {
            let mut l = LayerBuilder::new();
            l.symlink("evil", out.to_str().unwrap())
                .file("evil/pwned", 0o644, b"x");
            l.finish()
        },
        // relative symlink climbing out, then a file through it
        {
            let mut l = LayerBuilder::new();
            l.symlink("up", "../../../../../../../../..").file(
                &format!("up{}/pwned", out.display()),
                0o644,
                b"x",
            );
            l.finish()
        },
        // symlinked parent dir, then a directory and a file below it
        {
            let mut l = LayerBuilder::new();
            l.dir("d", 0o755)
                .symlink("d/link", out.to_str().unwrap())
                .dir("d/link/sub", 0o755)
                .file("d/link/sub/f", 0o644, b"x");
            l.finish()
        },
        // a symlink replaced by a file must not write through the link
        {
            let mut l = LayerBuilder::new();
            l.symlink("victim", &format!("{}/victim", out.display()))
                .file("victim", 0o644, b"x");
            l.finish()
        },
    ];
    for (i, tar) in cases.into_iter().enumerate() {
        // either refused or written inside the layer: never outside
        match sb.apply(tar) {
            Ok(chain) => {
                let fs = sb.snaps.fs_dir(&chain);
                assert!(!tree(&fs).is_empty(), "case {i}");
                sb.snaps.remove(&chain).unwrap();
            }
            Err(e) => assert!(e.to_string().contains("layer entry"), "case {i}: {e}"),
        }
        assert_eq!(tree(&out), Vec::<String>::new(), "case {i} wrote outside");
    }
    sb.assert_clean();
}

#[test]
fn hardlink_escapes_are_refused() {
    if !berth_testkit::require_root("hardlink_escapes_are_refused") {
        return;
    }
    let sb = Sandbox::new();
    let secret = sb.outside().join("secret");
    std::fs::write(&secret, b"host secret").unwrap();
    for target in [
        "../../../../../../../../etc/passwd".to_string(),
        secret.display().to_string(),
        "nonexistent".into(),
    ] {
        let mut l = LayerBuilder::new();
        l.hardlink("stolen", &target);
        let e = sb.apply(l.finish()).unwrap_err().to_string();
        assert!(
            e.contains("escapes the layer directory") || e.contains("is not in this layer"),
            "{target}: {e}"
        );
    }
    // a hardlink through a symlink planted in the layer resolves inside the layer only
    let mut l = LayerBuilder::new();
    l.symlink("sl", sb.outside().to_str().unwrap())
        .hardlink("stolen", "sl/secret");
    let e = sb.apply(l.finish()).unwrap_err().to_string();
    assert!(e.contains("is not in this layer"), "{e}");
    assert_eq!(
        std::fs::metadata(&secret)
            .map(|m| std::os::unix::fs::MetadataExt::nlink(&m))
            .unwrap(),
        1
    );
    std::fs::remove_file(&secret).unwrap();
    sb.assert_clean();
}

#[test]
fn bad_whiteouts_and_garbage_are_refused() {
    if !berth_testkit::require_root("bad_whiteouts_and_garbage_are_refused") {
        return;
    }
    let sb = Sandbox::new();
    for name in [".wh..", ".wh.", "d/.wh.."] {
        let mut l = LayerBuilder::new();
        l.file(name, 0o644, b"");
        let e = sb.apply(l.finish()).unwrap_err().to_string();
        assert!(e.contains("invalid whiteout"), "{name}: {e}");
    }
    let e = sb
        .apply(
            b"this is not a tar archive at all, but it is long enough to fill a header block? no"
                .repeat(10),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a valid tar stream") || e.contains("layer"),
        "{e}"
    );
    let mut gz = vec![0x1f, 0x8b];
    gz.extend_from_slice(&[0u8; 64]);
    let e = sb.apply(gz).unwrap_err().to_string();
    assert!(!e.is_empty());
    sb.assert_clean();
}

fn assert_store_untouched(root: &Path) {
    assert!(
        tree(&root.join("image/snapshots")).is_empty(),
        "{:?}",
        tree(&root.join("image/snapshots"))
    );
    assert!(tree(&root.join("image/images")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_and_truncated_blobs_are_refused() {
    if !berth_testkit::require_root("corrupt_and_truncated_blobs_are_refused") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "busybox", "latest", &img, Format::Oci).unwrap();
    let layer = images::sha256(&img.layers[0].blob);

    let corrupt = Proxy::start(&reg.addr, None, Fault::CorruptBlobs { min_size: 10_000 }).unwrap();
    let (d, s) = store();
    let e = s
        .pull(
            &r(&format!("{}/busybox", corrupt.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&layer), "{e}");
    assert_store_untouched(d.path());
    assert!(!s.has_blob(&berth_image::Digest::parse(&layer).unwrap()));

    let trunc = Proxy::start(&reg.addr, None, Fault::TruncateBlobs { min_size: 10_000 }).unwrap();
    let (d, s) = store();
    let e = s
        .pull(
            &r(&format!("{}/busybox", trunc.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ImageError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_store_untouched(d.path());
    // the kept partial lets a later pull from a good registry resume
    let rec = s
        .pull(
            &r(&format!("{}/busybox", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
}

#[tokio::test(flavor = "multi_thread")]
async fn non_json_config_and_hostile_layer_via_registry() {
    if !berth_testkit::require_root("non_json_config_and_hostile_layer_via_registry") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    // config that is not JSON
    let mut img = images::busybox_image().unwrap();
    img.config = b"<html>not json</html>".to_vec();
    images::push(&reg.addr, "badcfg", "latest", &img, Format::Oci).unwrap();
    let (d, s) = store();
    let e = s
        .pull(
            &r(&format!("{}/badcfg", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("image config is not valid JSON"),
        "{e}"
    );
    assert_store_untouched(d.path());

    // a layer escaping with ../
    let mut l = LayerBuilder::new();
    l.file("../../../../../../../../../tmp/berth-pwned", 0o644, b"x");
    let evil = TestImage::new(
        vec![TestLayer::new(l.finish(), Compression::Gzip)],
        images::busybox_config(),
        images::host_arch(),
    );
    images::push(&reg.addr, "evil", "latest", &evil, Format::Docker).unwrap();
    let e = s
        .pull(
            &r(&format!("{}/evil", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("escapes the layer directory"), "{e}");
    assert!(!Path::new("/tmp/berth-pwned").exists());
    assert_store_untouched(d.path());

    // a manifest whose config lists fewer diff IDs than layers
    let good = images::busybox_image().unwrap();
    let wrong = TestImage {
        config: images::TestImage::new(vec![], images::busybox_config(), images::host_arch())
            .config,
        layers: good.layers.clone(),
    };
    images::push(&reg.addr, "wrong", "latest", &wrong, Format::Oci).unwrap();
    let e = s
        .pull(
            &r(&format!("{}/wrong", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("inconsistent"), "{e}");

    // unknown tag and unknown repository
    let e = s
        .pull(
            &r(&format!("{}/badcfg:nope", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not found: manifest unknown"), "{e}");
    assert_eq!(e.kind(), berth_image::ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_larger_than_descriptor_is_cut_off() {
    if !berth_testkit::require_root("blob_larger_than_descriptor_is_cut_off") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    for l in &img.layers {
        images::push_blob(&reg.addr, "big", &l.blob).unwrap();
    }
    images::push_blob(&reg.addr, "big", &img.config).unwrap();
    let (m, mt) = img.manifest(Format::Oci);
    let mut v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let real = v["layers"][0]["size"].as_u64().unwrap();
    v["layers"][0]["size"] = (real / 4).into();
    images::push_manifest(
        &reg.addr,
        "big",
        "latest",
        mt,
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let (d, s) = store();
    let e = s
        .pull(
            &r(&format!("{}/big", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ImageError::Oversized { .. }), "{e}");
    assert!(e.to_string().contains("larger than its descriptor"), "{e}");
    assert_store_untouched(d.path());
    assert!(tree(&d.path().join("image/ingest")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_retried_then_reported() {
    if !berth_testkit::require_root("rate_limit_is_retried_then_reported") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let proxy = Proxy::start(&reg.addr, None, Fault::RateLimitManifests).unwrap();
    let (_d, s) = store();
    let e = s
        .pull(
            &r(&format!("{}/busybox", proxy.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("toomanyrequests"), "{e}");
    let tries = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/manifests/"))
        .count();
    assert!(tries >= 3, "retried with backoff: {:?}", proxy.requests());
    // an unreachable registry says so
    let port = berth_testkit::unique::free_port();
    let e = s
        .pull(
            &r(&format!("127.0.0.1:{port}/x")),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot reach registry"), "{e}");
    assert_eq!(e.kind(), berth_image::ErrorKind::Unavailable);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_partial_or_stored_blob_is_fetched_again() {
    if !berth_testkit::require_root("bad_partial_or_stored_blob_is_fetched_again") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::busybox_image().unwrap();
    images::push(&reg.addr, "busybox", "latest", &img, Format::Oci).unwrap();
    let proxy = Proxy::start(&reg.addr, None, Fault::None).unwrap();
    let layer = images::sha256(&img.layers[0].blob);
    let hex = layer.trim_start_matches("sha256:");
    let (d, s) = store();
    // garbage where a partial download would be
    std::fs::write(
        d.path().join(format!("image/ingest/{hex}.partial")),
        vec![0x1f; 5000],
    )
    .unwrap();
    let rec = s
        .pull(
            &r(&format!("{}/busybox", proxy.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(rec.id.to_string(), img.id());
    let gets: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.contains(hex))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets[0].contains("[Range: bytes=5000-]") && !gets[1].contains("Range"),
        "{gets:?}"
    );
    // a corrupted stored blob whose snapshot is gone: detected, fetched again
    let blob = d.path().join(format!("image/blobs/sha256/{hex}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    s.snapshots().remove(&rec.layers[0].chain_id).unwrap();
    proxy.clear_log();
    let by_digest = format!(
        "{}/busybox@{}",
        proxy.addr,
        rec.repo_digests[0].rsplit_once('@').unwrap().1
    );
    let rec2 = s
        .pull(&r(&by_digest), &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(rec2.id, rec.id);
    assert!(s.snapshots().exists(&rec.layers[0].chain_id));
    assert_eq!(
        proxy.requests().iter().filter(|r| r.contains(hex)).count(),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(images::sha256(&std::fs::read(&blob).unwrap()), layer);
}
