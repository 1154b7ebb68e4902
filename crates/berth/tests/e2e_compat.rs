//! E2E, root tier: Docker-compatibility details, checked through the real docker CLI and
//! berth's own CLI side by side: Go-template sub-pipelines and `table` formats, `top` with
//! ps options, `history`, `attach` and detach keys.

mod common;

use std::time::Duration;

use common::{ok, registry, Daemon};

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    if !std::path::Path::new(common::DOCKER).exists() {
        eprintln!("skipping {test}: {} is not installed", common::DOCKER);
        return None;
    }
    let (reg, img) = registry();
    let d = Daemon::start();
    let p = d.docker(&["pull", "-q", &img]);
    ok(&d, &p);
    Some((d, reg, img))
}

/// The same template through both CLIs gives the same output.
#[test]
fn templates_sub_pipelines_and_table_formats() {
    let Some((d, _reg, img)) = setup("templates_sub_pipelines_and_table_formats") else {
        return;
    };
    let r = d.docker(&[
        "run", "-d", "--name", "tpl", "-l", "a=b", "-l", "c=d", &img, "sleep", "300",
    ]);
    ok(&d, &r);
    let ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "tpl"]);
    ok(&d, &ip);
    let ip = ip.stdout.trim().to_string();
    assert!(ip.contains('.'), "container IP: {ip:?}");
    let cases: &[(&str, &str)] = &[
        (
            r#"{{(index .NetworkSettings.Networks "bridge").IPAddress}}"#,
            ip.as_str(),
        ),
        (r#"{{(index .Config.Labels "a")}}"#, "b"),
        (r#"{{(index .Config.Labels "a") | upper}}"#, "B"),
        (
            r#"{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"#,
            "a=b;c=d;",
        ),
        (
            r#"{{if eq .State.Status "running"}}up{{else}}down{{end}} {{len .Config.Labels}}"#,
            "up 2",
        ),
        (
            r#"{{join (split "x:y" ":") ","}} {{.Name | lower}}"#,
            "x,y /tpl",
        ),
        (r#"{{json .Config.Labels}}"#, r#"{"a":"b","c":"d"}"#),
    ];
    for (tpl, want) in cases {
        let dk = d.docker(&["inspect", "-f", tpl, "tpl"]);
        ok(&d, &dk);
        let bt = d.berth(&["inspect", "-f", tpl, "tpl"]);
        ok(&d, &bt);
        assert_eq!(dk.stdout.trim_end(), *want, "docker {tpl}");
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {tpl}");
    }
    // A bad template: docker's message and exit code (64) from both.
    for bad in ["{{nosuch .Name}}", "{{(index .Config.Labels \"a\"}}"] {
        let dk = d.docker(&["inspect", "-f", bad, "tpl"]);
        let bt = d.berth(&["inspect", "-f", bad, "tpl"]);
        assert_eq!(dk.code, 64, "{dk:?}");
        assert_eq!(bt.code, 64, "{bt:?}");
        assert!(
            bt.stderr
                .starts_with("template parsing error: template: :1: "),
            "{bt:?}"
        );
    }
    assert_eq!(
        d.docker(&["inspect", "-f", "{{nosuch}}", "tpl"]).stderr,
        d.berth(&["inspect", "-f", "{{nosuch}}", "tpl"]).stderr
    );
    // `table` formats of list commands: same header and rows.
    for args in [
        &["ps", "--format", "table {{.Names}}\t{{.Image}}\t{{.State}}"][..],
        &["ps", "--format", "{{.Names}} {{.Labels}}"][..],
        &["images", "--format", "table {{.Repository}}\t{{.Tag}}"][..],
        &["volume", "ls", "--format", "table {{.Name}}"][..],
    ] {
        let dk = d.docker(args);
        ok(&d, &dk);
        let bt = d.berth(args);
        ok(&d, &bt);
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {args:?}");
    }
    let t = d.berth(&["ps", "--format", "table {{.Names}}\t{{.State}}"]);
    assert_eq!(t.stdout, "NAMES     STATE\ntpl       running\n", "{t:?}");
    let bad = d.berth(&["ps", "--format", "{{nosuch}}"]);
    let dbad = d.docker(&["ps", "--format", "{{nosuch}}"]);
    assert_eq!((bad.code, dbad.code), (1, 1), "{bad:?} {dbad:?}");
    assert_eq!(bad.stderr, dbad.stderr);
    let _ = d.berth_in(&["rm", "-f", "tpl"], None, Duration::from_secs(30));
}

/// `top CONTAINER [ps OPTIONS]`: the host's ps, only the container's rows.
#[test]
fn top_with_ps_options() {
    let Some((d, _reg, img)) = setup("top_with_ps_options") else {
        return;
    };
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", "toppy", &img, "sleep", "301"]),
    );
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "toppy"]);
    ok(&d, &pid);
    let pid = pid.stdout.trim().to_string();
    for cli in ["docker", "berth"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        // Without options: ps -ef columns (the /proc fast path).
        let t = run(&["top", "toppy"]);
        ok(&d, &t);
        let head: Vec<&str> = t
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            head,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "{cli}: {t:?}"
        );
        // BSD options: ps aux columns, one row: the container's sleep.
        let t = run(&["top", "toppy", "aux"]);
        ok(&d, &t);
        let lines: Vec<&str> = t.stdout.lines().collect();
        assert!(
            lines[0].starts_with("USER")
                && lines[0].contains("%CPU")
                && lines[0].ends_with("COMMAND"),
            "{cli}: {t:?}"
        );
        assert_eq!(lines.len(), 2, "{cli}: only the container's process: {t:?}");
        assert!(
            lines[1].contains(&format!(" {pid} ")) && lines[1].ends_with("sleep 301"),
            "{cli}: {t:?}"
        );
        // Chosen columns.
        let t = run(&["top", "toppy", "-o", "pid,comm"]);
        ok(&d, &t);
        assert_eq!(
            t.stdout
                .lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec![pid.as_str(), "sleep"]),
            "{cli}: {t:?}"
        );
        // Bad options: ps's own complaint as a 500; a renamed PID column is refused.
        let t = run(&["top", "toppy", "--no-such-ps-option"]);
        assert_eq!(t.code, 1, "{cli}: {t:?}");
        assert!(
            t.stderr.contains("Error response from daemon: ps: "),
            "{cli}: {t:?}"
        );
        let t = run(&["top", "toppy", "-o", "comm=PID"]);
        assert_eq!(t.code, 1, "{cli}: {t:?}");
        assert!(
            t.stderr.contains("specifying \"comm=PID\" is not allowed"),
            "{cli}: {t:?}"
        );
    }
    let (s, _, body) = d
        .raw("GET", "/containers/toppy/top?ps_args=-o%20pid,user", None)
        .expect("top reply");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("top json");
    assert_eq!(v["Titles"], serde_json::json!(["PID", "USER"]));
    assert_eq!(v["Processes"], serde_json::json!([[pid, "root"]]));
    let (s, _, _) = d
        .raw("GET", "/containers/toppy/top?ps_args=-o%20comm%3DPID", None)
        .expect("top reply");
    assert_eq!(s, 400);
    let _ = d.berth_in(&["rm", "-f", "toppy"], None, Duration::from_secs(30));
}

/// busybox plus a layer of our own, with empty-layer steps between (as a Dockerfile build
/// makes them), pushed to the loopback registry as `hist:v1`.
fn push_image_with_history(reg: &berth_testkit::registry::RegistryGuard) -> String {
    use berth_testkit::images::{self, Compression, LayerBuilder, TestImage, TestLayer};
    let base = images::busybox_image().expect("busybox image");
    let mut lb = LayerBuilder::new();
    lb.file("hi", 0o644, &[b'x'; 2500]);
    let mut layers = base.layers.clone();
    layers.push(TestLayer::new(lb.finish(), Compression::Gzip));
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id()).collect();
    let cfg = serde_json::json!({
        "architecture": images::host_arch(), "os": "linux", "created": "2023-11-14T22:13:23Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2023-11-14T22:13:20Z", "created_by": "ADD rootfs.tar / # buildkit", "comment": "buildkit.dockerfile.v0"},
            {"created": "2023-11-14T22:13:21Z", "created_by": "ENV A=1", "empty_layer": true},
            {"created": "2023-11-14T22:13:22Z", "created_by": "RUN /bin/sh -c head -c 2500 /dev/zero | tr '\\0' x > /hi # a long command line", "comment": "buildkit.dockerfile.v0"},
            {"created": "2023-11-14T22:13:23Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ],
    });
    let img = TestImage {
        config: serde_json::to_vec(&cfg).expect("config json"),
        layers,
    };
    images::push(&reg.addr, "hist", "v1", &img, images::Format::Docker).expect("push hist:v1");
    format!("{}/hist:v1", reg.addr)
}

/// `history` through the API, the docker CLI and berth's CLI.
#[test]
fn image_history() {
    let Some((d, reg, _img)) = setup("image_history") else {
        return;
    };
    let hist = push_image_with_history(&reg);
    ok(&d, &d.docker(&["pull", "-q", &hist]));
    let id = d.docker(&["inspect", "-f", "{{.Id}}", &hist]);
    ok(&d, &id);
    let id = id.stdout.trim().to_string();
    let path = format!("/images/{hist}/history");
    let (s, _, body) = d.raw("GET", &path, None).expect("history reply");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("history json");
    let rows = v.as_array().expect("a list");
    assert_eq!(rows.len(), 4, "{v:#}");
    assert_eq!(rows[0]["Id"], id.as_str());
    assert_eq!(rows[0]["Tags"], serde_json::json!([hist.as_str()]));
    assert_eq!(rows[0]["CreatedBy"], "CMD [\"sh\"]");
    assert_eq!(rows[0]["Size"], 0);
    assert_eq!(rows[0]["Created"], 1_700_000_003);
    assert_eq!(rows[1]["Id"], "<missing>");
    assert_eq!(rows[1]["Size"], 2500);
    assert_eq!(rows[1]["Comment"], "buildkit.dockerfile.v0");
    assert_eq!(
        (rows[2]["Id"].as_str(), rows[2]["Size"].as_i64()),
        (Some("<missing>"), Some(0))
    );
    assert!(
        rows[3]["Size"].as_i64().unwrap_or(0) > 100_000,
        "busybox layer: {v:#}"
    );
    let (s, _, body) = d
        .raw("GET", "/images/nosuch:v9/history", None)
        .expect("reply");
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("No such image: nosuch:v9"), "{body}");

    // Both CLIs print the same table, in every mode.
    for args in [
        vec!["history", hist.as_str()],
        vec!["history", "--no-trunc", hist.as_str()],
        vec!["history", "-q", hist.as_str()],
        vec![
            "history",
            "--format",
            "table {{.ID}}\t{{.CreatedBy}}\t{{.Size}}",
            hist.as_str(),
        ],
        vec![
            "history",
            "--format",
            "{{.ID}}|{{.CreatedAt}}|{{.Comment}}",
            hist.as_str(),
        ],
        vec!["image", "history", "--format", "json", hist.as_str()],
    ] {
        let dk = d.docker(&args);
        ok(&d, &dk);
        let bt = d.berth(&args);
        ok(&d, &bt);
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {args:?}");
    }
    // `-H=false` is docker's short form; berth's -H is its host flag, so compare --human=false.
    let dk = d.docker(&["history", "--human=false", &hist]);
    let bt = d.berth(&["history", "--human=false", &hist]);
    ok(&d, &dk);
    assert_eq!(bt.stdout, dk.stdout);
    assert!(dk.stdout.contains(" 2500 "), "{dk:?}");
    let t = d.berth(&["history", &hist]);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE")
            && lines[0].contains("CREATED BY")
            && lines[0].ends_with("COMMENT"),
        "{t:?}"
    );
    assert!(
        lines[1].starts_with(&id["sha256:".len().."sha256:".len() + 12]),
        "{t:?}"
    );
    assert!(
        lines[2].starts_with("<missing>") && lines[2].contains("…") && lines[2].contains("2.5kB"),
        "{t:?}"
    );
    let q = d.berth(&["history", "-q", &hist]);
    assert_eq!(
        q.stdout.lines().filter(|l| *l == "<missing>").count(),
        3,
        "{q:?}"
    );
    let nf = d.berth(&["history", "nosuch:v9"]);
    assert_eq!(nf.code, 1);
    assert_eq!(nf.stderr, d.docker(&["history", "nosuch:v9"]).stderr);

    // An imported image: one step, with the import's comment.
    let tar = berth_testkit::images::LayerBuilder::new().finish();
    let imp = d.docker_in(
        &["import", "-", "imported:v1"],
        Some(&tar),
        Duration::from_secs(60),
    );
    ok(&d, &imp);
    let h = d.berth(&[
        "history",
        "--format",
        "{{.ID}} {{.Size}} {{.Comment}}",
        "imported:v1",
    ]);
    ok(&d, &h);
    assert_eq!(h.stdout.lines().count(), 1, "{h:?}");
    assert!(h.stdout.contains(" 0B Imported from "), "{h:?}");
}
