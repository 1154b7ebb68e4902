//! Root tier: compatibility with `runc spec` bundles and, where runc is installed, the same
//! bundle under runc and berth reports the same through the checker.

mod common;

use std::os::fd::AsFd;
use std::process::Command;

use common::{fixture, wait_code};
use serde_json::json;

/// Run `berth runtime ARGS` (the CLI, in a forked child with stdin and stdout on /dev/null).
fn berth_cli(args: Vec<String>) -> i32 {
    let pid = berth_sys::fork_child(move || {
        // Drop what other test threads had open when we forked (files being written, pipes).
        berth_sys::close_fds_except(&[]).unwrap();
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        nix::unistd::dup2_stdin(null.as_fd()).unwrap();
        nix::unistd::dup2_stdout(null.as_fd()).unwrap();
        berth_runtime::cli::main(args)
    })
    .unwrap();
    wait_code(pid, 60)
}

#[test]
fn runc_spec_bundle_runs_unchanged() {
    let Some(f) = fixture("runc-spec", |_| {}) else {
        return;
    };
    // Exactly what `runc spec` writes: terminal true, args ["sh"].
    std::fs::write(
        f.bundle.join("config.json"),
        berth_testkit::rootfs::RUNC_SPEC,
    )
    .unwrap();
    let root = f.dir.path().join("state").display().to_string();
    let code = berth_cli(vec![
        "--root".into(),
        root,
        "run".into(),
        "--bundle".into(),
        f.bundle.display().to_string(),
        f.id.clone(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        f.rt.state(&f.id).unwrap_err().kind(),
        berth_runtime::ErrorKind::NotFound
    );
    // Without cgroupsPath the runtime used its default parent, /berth: remove it when empty
    // (a concurrent user keeps it: rmdir of a cgroup with children fails).
    if let Ok(m) = berth_cgroups::open(berth_cgroups::CgroupPath("/berth".into())) {
        let _ = m.destroy();
    }
}

#[test]
fn cli_run_exits_with_the_container_status() {
    let Some(f) = fixture("cli-exit", |s| {
        s["process"]["args"] = json!(["/bin/checker", "exit", "42"])
    }) else {
        return;
    };
    let root = f.dir.path().join("state").display().to_string();
    let code = berth_cli(vec![
        "--root".into(),
        root.clone(),
        "run".into(),
        "-b".into(),
        f.bundle.display().to_string(),
        f.id.clone(),
    ]);
    assert_eq!(code, 42);
    // create / start / state / kill / delete through the CLI too
    let b = f.bundle.display().to_string();
    let cli = |a: &[&str]| {
        let mut v = vec!["--root".to_string(), root.clone()];
        v.extend(a.iter().map(|s| s.to_string()));
        berth_cli(v)
    };
    std::fs::write(
        f.bundle.join("config.json"),
        std::fs::read_to_string(f.bundle.join("config.json"))
            .unwrap()
            .replace("\"exit\",\n      \"42\"", "\"sleep\",\n      \"30\""),
    )
    .unwrap();
    assert_eq!(cli(&["create", "--bundle", &b, &f.id]), 0);
    assert_eq!(
        f.rt.state(&f.id).unwrap().status,
        berth_runtime::Status::Created
    );
    assert_eq!(cli(&["start", &f.id]), 0);
    assert_eq!(cli(&["kill", &f.id, "KILL"]), 0);
    assert_ne!(cli(&["delete", "nonexistent-xyz"]), 0);
    for _ in 0..400 {
        if f.rt.state(&f.id).unwrap().status == berth_runtime::Status::Stopped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(cli(&["delete", &f.id]), 0);
}

fn runc_report(f: &common::Fixture) -> Option<serde_json::Value> {
    if Command::new("runc").arg("--version").output().is_err() {
        eprintln!("runc not installed; skipping the runc side");
        return None;
    }
    let root = f.dir.path().join("runc-state");
    let id = format!("{}-runc", f.id);
    let out = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["run", "--bundle"])
        .arg(&f.bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["delete", "-f", &id])
        .output();
    assert!(
        out.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn mount_targets(r: &serde_json::Value) -> Vec<String> {
    let mut t: Vec<String> = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t.dedup();
    t
}

#[test]
fn same_bundle_under_runc_and_berth_reports_the_same() {
    let Some(f) = fixture("vs-runc", |s| s["hostname"] = json!("twins")) else {
        return;
    };
    let berth = f.report();
    let Some(runc) = runc_report(&f) else { return };
    for k in [
        "pid",
        "uid",
        "gid",
        "groups",
        "hostname",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Umask",
        "interfaces",
        "processes",
        "cwd",
    ] {
        assert_eq!(berth[k], runc[k], "{k} differs");
    }
    let mut env_b: Vec<_> = berth["env"]
        .as_array()
        .unwrap()
        .clone()
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    let mut env_r: Vec<_> = runc["env"]
        .as_array()
        .unwrap()
        .clone()
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    env_b.sort();
    env_r.sort();
    assert_eq!(env_b, env_r, "env differs");
    assert_eq!(berth["rlimits"], runc["rlimits"], "rlimits differ");
    assert_eq!(
        mount_targets(&berth),
        mount_targets(&runc),
        "mount targets differ"
    );
}
