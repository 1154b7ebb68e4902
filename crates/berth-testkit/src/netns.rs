//! Network namespaces that stand in for containers in root-tier network tests.
//!
//! [`NetNs::new`] runs `ip netns add <unique>` (setup cost is irrelevant in tests; the code
//! under test uses netlink), and its `Drop` deletes the namespace and its `/etc/netns/<name>`
//! overrides even when the test panics. Processes started with [`NetNs::spawn`] are killed
//! (by pid) when their guard drops. `ip netns exec` bind-mounts `/etc/netns/<name>/*` over
//! `/etc/*`, which is how a test gives its "container" a `resolv.conf`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// A named network namespace, deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Create a namespace named `prefix` + unique suffix.
    pub fn new(prefix: &str) -> Result<NetNs> {
        let name = crate::unique::name(prefix);
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .context("run ip netns add")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ns = NetNs { name };
        // lo up so 127.0.0.1 works even before any code under test runs
        ns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file (what `setns` and berth-net take).
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// Run to completion inside the namespace; error on non-zero exit.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let out = self
            .command(program, args)
            .output()
            .with_context(|| format!("run {program} in {}", self.name))?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} in {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// `sh -c script` inside the namespace; returns the output whatever the exit status.
    pub fn sh(&self, script: &str) -> Result<Output> {
        self.command("/bin/sh", &["-c", script])
            .output()
            .context("run sh in netns")
    }

    /// Start a long-running process inside the namespace; killed when the guard drops.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Result<Proc> {
        let child = self
            .command(program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {program} in {}", self.name))?;
        Ok(Proc(child))
    }

    /// Write `/etc/netns/<name>/<file>`, seen as `/etc/<file>` by `ip netns exec` commands.
    pub fn write_etc(&self, file: &str, content: &str) -> Result<()> {
        let dir = Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(file), content)?;
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A process started in a namespace; killed (by its pid) and reaped on drop.
pub struct Proc(Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
