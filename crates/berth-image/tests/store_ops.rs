//! Root tier: store operations — import, tag, list, remove (refused while in use), GC.

mod common;

use berth_image::{ContainerConfig, ImageError, PullOptions, RemoveEvent};
use berth_testkit::images::{self, Format};
use berth_testkit::registry::RegistryGuard;
use common::*;

#[test]
fn import_tag_remove_gc() {
    if !berth_testkit::require_root("import_tag_remove_gc") {
        return;
    }
    let (d, s) = store();
    let tar = images::busybox_layer_tar().unwrap();
    let defaults = ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let rec = s
        .import(&mut &tar[..], Some(&r("imported:v1")), defaults)
        .unwrap();
    assert_eq!(rec.repo_tags, vec!["imported:v1"]);
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].diff_id.to_string(), images::sha256(&tar));
    assert_eq!(
        rec.config.config.cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    // import is compressed-or-not: a gzip of the same tar gives the same layer
    let gz = images::TestLayer::new(tar.clone(), images::Compression::Gzip).blob;
    let rec2 = s
        .import(&mut &gz[..], None, ContainerConfig::default())
        .unwrap();
    assert_eq!(rec2.layers[0].chain_id, rec.layers[0].chain_id);
    assert!(rec2.repo_tags.is_empty());

    s.tag("imported:v1", &r("other/name:x")).unwrap();
    let got = s.get("other/name:x").unwrap();
    assert_eq!(got.id, rec.id);
    assert_eq!(got.repo_tags, vec!["imported:v1", "other/name:x"]);
    assert!(s.tag("imported:v1", &r(&format!("x@{}", rec.id))).is_err());
    assert!(matches!(
        s.tag("missing", &r("y")),
        Err(ImageError::NotFound(_))
    ));

    // by ID with two tags: refused unless forced
    let e = s
        .remove(&rec.id.to_string(), false, &|_| false)
        .unwrap_err();
    assert!(matches!(e, ImageError::Conflict(_)), "{e}");
    // untag one name
    assert_eq!(
        s.remove("other/name:x", false, &|_| false).unwrap(),
        vec![RemoveEvent::Untagged("other/name:x".into())]
    );
    // in use by a container: refused, then forced
    let e = s
        .remove("imported:v1", false, &|id| *id == rec.id)
        .unwrap_err();
    assert!(e.to_string().contains("being used by a container"), "{e}");
    let m = s.prepare_container_rootfs("user", &rec).unwrap();
    let ev = s.remove("imported:v1", true, &|_| true).unwrap();
    assert_eq!(
        ev,
        vec![
            RemoveEvent::Untagged("imported:v1".into()),
            RemoveEvent::Deleted(rec.id.clone())
        ]
    );
    assert!(matches!(s.get("imported:v1"), Err(ImageError::NotFound(_))));
    // removal collects the images' blobs; the snapshot stays while a container rootfs uses it
    s.remove(&rec2.id.to_string(), false, &|_| false).unwrap();
    assert!(!s.has_blob(&rec.id) && !s.has_blob(&rec2.id));
    assert!(tree(&d.path().join("image/blobs/sha256")).is_empty());
    assert_eq!(s.gc().unwrap(), berth_image::GcStats::default());
    assert!(s.snapshots().exists(&rec.layers[0].chain_id));
    s.remove_container_rootfs("user").unwrap();
    assert!(!m.upper.exists());
    let st = s.gc().unwrap();
    assert_eq!(st.snapshots, 1);
    assert!(tree(&d.path().join("image/snapshots")).is_empty());
    assert!(s.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn records_survive_reopen_and_gc_keeps_pulled() {
    if !berth_testkit::require_root("records_survive_reopen_and_gc_keeps_pulled") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let img = images::multilayer_image(images::Compression::Gzip).unwrap();
    images::push(&reg.addr, "m", "1", &img, Format::Docker).unwrap();
    let (d, s) = store();
    let rec = s
        .pull(
            &r(&format!("{}/m:1", reg.addr)),
            &PullOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(s.gc().unwrap(), berth_image::GcStats::default());
    drop(s);
    let s = berth_image::ImageStore::open(d.path(), Default::default()).unwrap();
    let again = s.get(&format!("{}/m:1", reg.addr)).unwrap();
    assert_eq!(again, rec);
    for l in &rec.layers {
        assert!(s.has_blob(l.blob.as_ref().unwrap()));
    }
    s.remove(&format!("{}/m:1", reg.addr), false, &|_| false)
        .unwrap();
    // removal gave back the 3 snapshots and 5 blobs (3 layers, config, manifest)
    assert!(tree(&d.path().join("image/snapshots")).is_empty());
    assert!(tree(&d.path().join("image/blobs/sha256")).is_empty());
    assert_eq!(s.gc().unwrap(), berth_image::GcStats::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn image_config_defaults_reach_the_record() {
    if !berth_testkit::require_root("image_config_defaults_reach_the_record") {
        return;
    }
    let reg = RegistryGuard::start().unwrap();
    let cfg = serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["A=1", "PATH=/bin"],
        "WorkingDir": "/tmp", "User": "nobody", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT", "Labels": {"k": "v"},
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000, "Retries": 3}
    });
    let name = images::push_busybox_with_config(&reg, "cfg", "1", cfg).unwrap();
    let (_d, s) = store();
    let rec = s
        .pull(&r(&name), &PullOptions::default(), &|_| {})
        .await
        .unwrap();
    let c = &rec.config.config;
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".to_string()][..])
    );
    assert_eq!(c.cmd.as_deref(), Some(&["echo hi".to_string()][..]));
    assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert_eq!(
        c.exposed_ports.as_ref().unwrap().keys().collect::<Vec<_>>(),
        vec!["53/udp", "80/tcp"]
    );
    assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(c.labels.as_ref().unwrap()["k"], "v");
    let h = c.healthcheck.as_ref().unwrap();
    assert_eq!((h.interval, h.retries), (Some(1_000_000_000), Some(3)));
    assert_eq!(c.env.as_ref().unwrap()[0], "A=1");
}
