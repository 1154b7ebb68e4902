//! E2E, root tier: docker-py (a second client, different code paths: unversioned
//! `/version` discovery, its own attach/exec socket handling) against `berth daemon`.
//! Skipped with a message when `python3 -c "import docker"` fails.

mod common;

use std::time::Duration;

use common::{registry, Daemon};

const SCRIPT: &str = r#"
import os, sys, docker
img = sys.argv[1]
c = docker.DockerClient(base_url="unix://" + os.environ["BERTH_SOCK"], version="auto")
assert c.version()["ApiVersion"] == "1.47"
c.images.pull(img)
assert any(img in (t for t in i.tags) for i in c.images.list()), c.images.list()
assert c.containers.run(img, "echo hi from py", remove=True) == b"hi from py\n"
ct = c.containers.run(img, "sh -c 'echo a; sleep 30'", detach=True, name="pyc")
assert c.containers.get("pyc").attrs["State"]["Running"] is True
r = ct.exec_run("cat /etc/hostname")
assert r.exit_code == 0 and r.output.strip().decode() == ct.id[:12], r
assert "cpu_stats" in ct.stats(stream=False)
ct.kill()
assert ct.wait()["StatusCode"] == 137
assert ct.logs() == b"a\n", ct.logs()
ct.remove()
try:
    c.containers.get("pyc")
    raise SystemExit("container still there")
except docker.errors.NotFound:
    pass
v = c.volumes.create("pyv")
assert c.volumes.get("pyv").attrs["Driver"] == "local"
v.remove()
print("docker-py ok")
"#;

#[test]
fn docker_py_against_berth() {
    if !berth_testkit::require_root("docker_py_against_berth") {
        return;
    }
    let probe = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping docker_py_against_berth: python3 with the docker package is not installed"
        );
        return;
    }
    let (_reg, img) = registry();
    let d = Daemon::start();
    let mut c = std::process::Command::new("python3");
    c.args(["-c", SCRIPT, &img]).env("BERTH_SOCK", &d.sock);
    let r = common::run_cmd(c, None, Duration::from_secs(120));
    assert_eq!(
        r.code,
        0,
        "{r:?}\n--- daemon log ---\n{}",
        common::tail(&d.log(), 30)
    );
    assert!(r.stdout.contains("docker-py ok"), "{r:?}");
}
