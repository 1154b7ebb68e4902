use super::*;
use crate::spec::{ContainerSpec, HostSpec};

fn facts() -> HostFacts {
    HostFacts {
        seccomp: seccomp::Host {
            go_arch: "amd64",
            scmp_arch: "SCMP_ARCH_X86_64",
            kernel: (6, 18),
        },
        bounding: caps::ALL_CAPS
            .iter()
            .filter(|c| **c != "CAP_SYS_RESOURCE")
            .map(|s| s.to_string())
            .collect(),
        limits: "Max open files            20000                20000                files\n"
            .into(),
        ncpu: 2,
    }
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww-data:x:33:\nadm:x:4:www-data\n",
        )
        .unwrap();
        Fixture { dir }
    }

    fn build(&self, cfg: &ContainerSpec) -> Result<BuiltSpec, String> {
        self.build_with(cfg, &[])
    }

    fn build_with(
        &self,
        cfg: &ContainerSpec,
        m: &[(mounts::UserMount, String)],
    ) -> Result<BuiltSpec, String> {
        let facts = facts();
        let etc = EtcPaths {
            hosts: "/c/hosts".into(),
            hostname: "/c/hostname".into(),
            resolv_conf: "/c/resolv.conf".into(),
        };
        let args = vec!["sh".to_string(), "-c".to_string(), "true".to_string()];
        build(&SpecInput {
            config: cfg,
            args: &args,
            rootfs: self.dir.path(),
            hostname: "abcdef123456",
            etc: Some(&etc),
            mounts: m,
            cgroups_path: "/berth/abc",
            init_binary: Some(Path::new("/usr/bin/berth")),
            join_netns: None,
            host: &facts,
        })
    }
}

fn json_of(b: &BuiltSpec) -> serde_json::Value {
    serde_json::to_value(&b.spec).unwrap()
}

fn caps_of(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v["process"]["capabilities"]["bounding"].clone()).unwrap()
}

#[test]
fn default_container_looks_like_docker() {
    let f = Fixture::new();
    let b = f.build(&ContainerSpec::default()).unwrap();
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    let v = json_of(&b);
    assert_eq!(caps_of(&v).len(), 14);
    assert_eq!(v["hostname"], "abcdef123456");
    assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
    assert_eq!(v["process"]["cwd"], "/");
    assert_eq!(v["process"]["user"]["uid"], 0);
    assert_eq!(v["process"]["noNewPrivileges"], false);
    let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
    assert_eq!(env[0], DEFAULT_PATH);
    assert!(env.contains(&"HOSTNAME=abcdef123456".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    assert!(v["linux"]["seccomp"]["syscalls"].as_array().unwrap().len() > 10);
    assert_eq!(v["linux"]["maskedPaths"].as_array().unwrap().len(), 12);
    let dests: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/dev/mqueue",
        "/dev/shm",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ] {
        assert!(dests.contains(&d), "{d} missing from {dests:?}");
    }
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for n in ["pid", "ipc", "mount", "uts", "network"] {
        assert!(ns.contains(&n), "{n}");
    }
}

#[test]
fn privileged_gets_our_caps_no_seccomp_no_masks() {
    let f = Fixture::new();
    let cfg = ContainerSpec {
        host: HostSpec {
            privileged: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let b = f.build(&cfg).unwrap();
    let v = json_of(&b);
    let caps = caps_of(&v);
    assert_eq!(
        caps.len(),
        caps::ALL_CAPS.len() - 1,
        "clamped to our bounding set"
    );
    assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    assert!(b.warnings.is_empty());
    assert!(v["linux"].get("seccomp").is_none());
    assert!(v["linux"].get("maskedPaths").is_none());
}

#[test]
fn cap_add_unavailable_warns() {
    let f = Fixture::new();
    let cfg = ContainerSpec {
        host: HostSpec {
            cap_add: vec!["SYS_RESOURCE".into(), "NET_ADMIN".into()],
            cap_drop: vec!["NET_RAW".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let b = f.build(&cfg).unwrap();
    let caps = caps_of(&json_of(&b));
    assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
    assert_eq!(b.warnings.len(), 1);
}

#[test]
fn security_opts() {
    let f = Fixture::new();
    let cfg = ContainerSpec {
        host: HostSpec {
            security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let v = json_of(&f.build(&cfg).unwrap());
    assert!(v["linux"].get("seccomp").is_none());
    assert_eq!(v["process"]["noNewPrivileges"], true);
    let custom = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let cfg = ContainerSpec {
        host: HostSpec {
            security_opt: vec![format!("seccomp={custom}")],
            ..Default::default()
        },
        ..Default::default()
    };
    let v = json_of(&f.build(&cfg).unwrap());
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    assert!(parse_security_opts(&["bogus".into()]).is_err());
    assert!(parse_security_opts(&["seccomp=/no/such/file.json".into()]).is_err());
    assert!(
        parse_security_opts(&["no-new-privileges:true".into()])
            .unwrap()
            .0
            .no_new_privileges
    );
}

#[test]
fn user_env_workdir_tty() {
    let f = Fixture::new();
    let cfg = ContainerSpec {
        user: Some("www-data".into()),
        env: vec!["PATH=/custom".into(), "A=1".into()],
        working_dir: Some("/srv".into()),
        tty: true,
        ..Default::default()
    };
    let v = json_of(&f.build(&cfg).unwrap());
    assert_eq!(v["process"]["user"]["uid"], 33);
    assert_eq!(
        v["process"]["user"]["additionalGids"],
        serde_json::json!([4])
    );
    assert_eq!(v["process"]["cwd"], "/srv");
    assert_eq!(v["process"]["terminal"], true);
    let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
    assert_eq!(env[0], "PATH=/custom");
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert!(env.contains(&"HOME=/var/www".to_string()));
    let bad = ContainerSpec {
        user: Some("nosuch".into()),
        ..Default::default()
    };
    assert!(f
        .build(&bad)
        .unwrap_err()
        .contains("unable to find user nosuch"));
}

#[test]
fn mounts_readonly_init_and_overrides() {
    let f = Fixture::new();
    let mut tmpfs = std::collections::BTreeMap::new();
    tmpfs.insert("/dev/shm".to_string(), "size=1m".to_string());
    let cfg = ContainerSpec {
        host: HostSpec {
            read_only_rootfs: true,
            init: Some(true),
            tmpfs,
            ..Default::default()
        },
        ..Default::default()
    };
    let user = mounts::user_mounts(&cfg.host, &[]).unwrap();
    let m: Vec<_> = user.into_iter().map(|u| (u, "tmpfs".to_string())).collect();
    let v = json_of(&f.build_with(&cfg, &m).unwrap());
    assert_eq!(v["root"]["readonly"], true);
    assert_eq!(v["process"]["args"][0], INIT_PATH);
    assert_eq!(v["process"]["args"][1], "--");
    let shm: Vec<_> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/dev/shm")
        .collect();
    assert_eq!(shm.len(), 1);
    assert!(shm[0]["options"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("size=1m")));
    assert!(v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == INIT_PATH));
}

#[test]
fn host_network_shares_uts_and_net() {
    let f = Fixture::new();
    let cfg = ContainerSpec {
        host: HostSpec {
            network_mode: "host".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let v = json_of(&f.build(&cfg).unwrap());
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(!ns.contains(&"network") && !ns.contains(&"uts"));
    assert!(v.get("hostname").is_none() || v["hostname"].is_null());
}

#[test]
fn env_merge_replaces_in_place() {
    let m = merge_env(
        &["A=1".into(), "B=2".into()],
        &["B=3".into(), "C=4".into(), "A".into()],
    );
    assert_eq!(m, vec!["A", "B=3", "C=4"]);
}
