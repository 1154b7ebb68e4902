//! Root tier: save/load round trips (OCI layout + manifest.json, classic docker-archive),
//! hostile archives, and push to a real registry (plain and token-authenticated).

mod common;

use berth_image::{ContainerConfig, PullOptions, PushEvent};
use berth_testkit::images::{self, Compression, Format, LayerBuilder};
use berth_testkit::registry::{Fault, Proxy, RegistryGuard, TokenAuth};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn save_load_round_trip() {
    if !berth_testkit::require_root("save_load_round_trip") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(Compression::Zstd).unwrap();
    images::push(&reg.addr, "multi", "v1", &img, Format::Docker).unwrap();
    let (_d1, a) = store();
    let name = format!("{}/multi:v1", reg.addr);
    let rec = a
        .pull(&r(&name), &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    let mut archive = Vec::new();
    a.save(&[&name], &mut archive).unwrap();

    let (d2, b) = store();
    let loaded = b.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, rec.id);
    assert_eq!(loaded[0].repo_tags, vec![name.clone()]);
    assert_eq!(loaded[0].chain_ids(), rec.chain_ids());
    let m = b.prepare_container_rootfs("rt", &loaded[0]).unwrap();
    {
        let mnt = mount_at(&m, d2.path());
        assert_eq!(
            tree(&mnt.0),
            images::MULTILAYER_FILES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
    }
    b.remove_container_rootfs("rt").unwrap();
    // the OCI half of the archive alone loads too (manifest.json removed)
    let mut oci = Vec::new();
    {
        let mut out = tar::Builder::new(&mut oci);
        let mut ar = tar::Archive::new(&archive[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some("manifest.json") {
                continue;
            }
            let mut h = e.header().clone();
            let p = e.path().unwrap().into_owned();
            out.append_data(&mut h, p, &mut e).unwrap();
        }
        out.finish().unwrap();
    }
    let (_d3, c) = store();
    let loaded = c.load(&mut &oci[..]).unwrap();
    assert_eq!(loaded[0].id, rec.id);
    assert_eq!(loaded[0].repo_tags, vec![name]);
    assert_eq!(
        loaded[0].manifest, rec.manifest,
        "the pulled manifest survives save/load"
    );
}

#[test]
fn load_classic_docker_archive_and_refuse_hostile() {
    if !berth_testkit::require_root("load_classic_docker_archive_and_refuse_hostile") {
        return;
    }
    let img = images::busybox_image().unwrap();
    let id = img.id();
    let hex = id.trim_start_matches("sha256:");
    let build = |manifest: &str, extra: &dyn Fn(&mut LayerBuilder)| {
        let mut a = LayerBuilder::new();
        a.dir("abc", 0o755)
            .file("abc/layer.tar", 0o644, &img.layers[0].tar);
        a.file(&format!("{hex}.json"), 0o644, &img.config);
        extra(&mut a);
        a.file("manifest.json", 0o644, manifest.as_bytes());
        a.finish()
    };
    let good = format!(
        r#"[{{"Config":"{hex}.json","RepoTags":["bb:1","bb:2"],"Layers":["abc/layer.tar"]}}]"#
    );
    let (_d, s) = store();
    let loaded = s.load(&mut &build(&good, &|_| {})[..]).unwrap();
    assert_eq!(loaded[0].id.to_string(), id);
    assert_eq!(loaded[0].repo_tags, vec!["bb:1", "bb:2"]);
    // a layer given through a symlink (docker writes these for repeated layers)
    let linked =
        format!(r#"[{{"Config":"{hex}.json","RepoTags":["bb:3"],"Layers":["def/layer.tar"]}}]"#);
    let loaded = s
        .load(
            &mut &build(&linked, &|a| {
                a.dir("def", 0o755)
                    .symlink("def/layer.tar", "../abc/layer.tar");
            })[..],
        )
        .unwrap();
    assert_eq!(loaded[0].id.to_string(), id);

    let (d, s) = store();
    for (manifest, extra, want) in [
        (
            r#"[{"Config":"../../etc/passwd","Layers":[]}]"#.to_string(),
            None,
            "escapes the archive",
        ),
        (
            format!(r#"[{{"Config":"{hex}.json","Layers":["esc/layer.tar"]}}]"#),
            Some("../../../../etc/passwd"),
            "escapes the archive",
        ),
        (
            format!(r#"[{{"Config":"{hex}.json","Layers":["missing.tar"]}}]"#),
            None,
            "is missing",
        ),
        (
            format!(r#"[{{"Config":"{hex}.json","Layers":["abc/layer.tar","abc/layer.tar"]}}]"#),
            None,
            "lists 2 layers",
        ),
        ("nonsense".to_string(), None, "manifest.json"),
    ] {
        let tar = build(&manifest, &|a| {
            if let Some(t) = extra {
                a.dir("esc", 0o755).symlink("esc/layer.tar", t);
            }
        });
        let e = s.load(&mut &tar[..]).unwrap_err().to_string();
        assert!(e.contains(want), "{manifest}: {e}");
    }
    // a layer whose diff ID does not match the config
    let mut other = LayerBuilder::new();
    other.file("x", 0o644, b"x");
    let other = other.finish();
    let mut a = LayerBuilder::new();
    a.file("l.tar", 0o644, &other)
        .file("c.json", 0o644, &img.config)
        .file(
            "manifest.json",
            0o644,
            br#"[{"Config":"c.json","Layers":["l.tar"]}]"#,
        );
    let e = s.load(&mut &a.finish()[..]).unwrap_err().to_string();
    assert!(e.contains("does not match"), "{e}");
    assert!(s.list().unwrap().is_empty());
    assert!(tree(&d.path().join("image/snapshots")).is_empty());
    assert!(tree(&d.path().join("image/ingest")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn push_round_trips_through_registries() {
    if !berth_testkit::require_root("push_round_trips_through_registries") {
        return;
    }
    let src = RegistryGuard::start().unwrap();
    let dst = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(Compression::Gzip).unwrap();
    let src_digest = images::push(&src.addr, "multi", "v1", &img, Format::Oci).unwrap();
    let (_d, s) = store();
    let rec = s
        .pull(
            &r(&format!("{}/multi:v1", src.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    let target = format!("{}/copied/multi:v2", dst.addr);
    s.tag(&rec.id.to_string(), &r(&target)).unwrap();
    let ev = Events2::default();
    let digest = s.push(&target, None, &ev.sink()).await.unwrap();
    assert_eq!(
        digest.to_string(),
        src_digest,
        "the pulled manifest is pushed byte for byte"
    );
    assert_eq!(ev.count(|e| matches!(e, PushEvent::Pushed { .. })), 4);
    // again: everything exists
    let ev = Events2::default();
    s.push(&target, None, &ev.sink()).await.unwrap();
    assert_eq!(ev.count(|e| matches!(e, PushEvent::LayerExists { .. })), 4);
    let (_d2, fresh) = store();
    let back = fresh
        .pull(&r(&target), &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(back.id, rec.id);

    // an imported image gets a generated OCI manifest; through a token-auth front
    let proxy = Proxy::start(
        &dst.addr,
        Some(TokenAuth {
            user: Some(("bob".into(), "pw".into())),
        }),
        Fault::None,
    )
    .unwrap();
    let tar = images::busybox_layer_tar().unwrap();
    let name = format!("{}/imported:1", proxy.addr);
    let imp = s
        .import(&mut &tar[..], Some(&r(&name)), ContainerConfig::default())
        .unwrap();
    let e = s.push(&name, None, &|_| {}).await.unwrap_err();
    assert!(e.to_string().contains("authentication required"), "{e}");
    let creds = berth_image::Credentials {
        username: "bob".into(),
        password: "pw".into(),
    };
    s.push(&name, Some(creds.clone()), &|_| {}).await.unwrap();
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.contains("scope=repository%3Aimported%3Apull%2Cpush")),
        "{:?}",
        proxy.requests()
    );
    let (_d3, fresh) = store();
    let opts = PullOptions {
        credentials: Some(creds),
        ..Default::default()
    };
    let back = fresh.pull(&r(&name), &opts, &|_| {}).await.unwrap();
    assert_eq!(back.id, imp.id);
}

#[derive(Default)]
struct Events2(std::sync::Mutex<Vec<PushEvent>>);

impl Events2 {
    fn sink(&self) -> impl Fn(PushEvent) + Send + Sync + '_ {
        move |e| self.0.lock().unwrap().push(e)
    }
    fn count(&self, f: impl Fn(&PushEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| f(e)).count()
    }
}
