//! E2E, root tier: docker-py (a second client, different code paths: unversioned
//! `/version` discovery, its own attach/exec socket handling) against `berth daemon`.
//! Skipped with a message when `python3 -c "import docker"` fails.

mod common;

use common::{docker_py, registry, Daemon};

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
    if !berth_testkit::require_root("docker_py_against_berth")
        || !docker_py::available("docker_py_against_berth")
    {
        return;
    }
    let (_reg, img) = registry();
    let d = Daemon::start();
    docker_py::run(&d, SCRIPT, &[&img], "docker-py ok");
}
