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
