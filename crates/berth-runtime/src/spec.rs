//! Loading a bundle's `config.json` and checking it before anything is created, so that an
//! invalid or impossible config leaves nothing behind and the error names the field.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// Read `<bundle>/config.json`; type errors name the JSON path (`process.user.uid: ...`).
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let file = File::open(&path).map_err(|e| {
        Error::io(
            format!(
                "cannot open {}; is {} an OCI bundle?",
                path.display(),
                bundle.display()
            ),
            e,
        )
    })?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "config.json".into()
        } else {
            field
        };
        Error::spec(field, e.into_inner().to_string())
    })?;
    Ok(spec)
}

/// The rootfs directory of `spec` as an absolute path (relative paths are bundle-relative).
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing; set root.path to the rootfs directory"))?;
    let p = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let p = p
        .canonicalize()
        .map_err(|e| Error::spec("root.path", format!("{}: {e}", p.display())))?;
    if !p.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("{} is not a directory", p.display()),
        ));
    }
    Ok(p)
}

/// Semantic checks a JSON schema cannot express. `need_process`: create needs `process`.
pub fn validate(spec: &Spec, need_process: bool) -> Result<()> {
    let v = spec.version();
    if !v.is_empty() && !v.starts_with("1.") {
        return Err(Error::spec(
            "ociVersion",
            format!("{v:?} is not a 1.x runtime spec version"),
        ));
    }
    if need_process {
        let p = spec.process().as_ref().ok_or_else(|| {
            Error::spec("process", "missing; the container needs a process to run")
        })?;
        match p.args() {
            Some(a) if !a.is_empty() && !a[0].is_empty() => {}
            _ => {
                return Err(Error::spec(
                    "process.args",
                    "empty; give the command to run",
                ))
            }
        }
        if !p.cwd().is_absolute() {
            return Err(Error::spec(
                "process.cwd",
                format!("{:?} must be an absolute path", p.cwd()),
            ));
        }
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            if r.soft() > r.hard() {
                return Err(Error::spec(
                    format!("process.rlimits[{i}]"),
                    format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::spec("linux", "missing; berth runs Linux containers only"))?;
    let mut seen = HashSet::new();
    let mut new_ns = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::spec(
                format!("linux.namespaces[{i}]"),
                format!("namespace {} is listed twice", ns.typ()),
            ));
        }
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.exists() {
                    return Err(Error::spec(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} does not exist", p.display()),
                    ));
                }
            }
            _ => {
                new_ns.insert(ns.typ());
            }
        }
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        return Err(Error::spec(
            "linux.namespaces",
            "a mount namespace is required; add {\"type\": \"mount\"}",
        ));
    }
    if new_ns.contains(&LinuxNamespaceType::User) {
        for (field, m) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            match m {
                Some(m) if !m.is_empty() => {
                    for (i, e) in m.iter().enumerate() {
                        if e.size() == 0 {
                            return Err(Error::spec(format!("{field}[{i}].size"), "must be > 0"));
                        }
                    }
                }
                _ => {
                    return Err(Error::spec(
                        field,
                        "a new user namespace needs at least one mapping",
                    ))
                }
            }
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !new_ns.contains(&LinuxNamespaceType::Uts)
    {
        return Err(Error::spec(
            "hostname",
            "setting a hostname needs a new uts namespace in linux.namespaces",
        ));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            return Err(Error::spec(format!("mounts[{i}].destination"), "is empty"));
        }
        let bind = m
            .options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
            || m.typ().as_deref() == Some("bind");
        if bind {
            match m.source() {
                Some(s) if s.exists() => {}
                Some(s) => {
                    return Err(Error::spec(
                        format!("mounts[{i}].source"),
                        format!("bind source {} does not exist", s.display()),
                    ))
                }
                None => {
                    return Err(Error::spec(
                        format!("mounts[{i}].source"),
                        "a bind mount needs a source",
                    ))
                }
            }
        }
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if crate::mount_opts::propagation(p).is_none() {
            return Err(Error::spec(
                "linux.rootfsPropagation",
                format!("{p:?} is not one of private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable"),
            ));
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for k in sysctl.keys() {
            if k.contains('/') || k.contains("..") || k.is_empty() {
                return Err(Error::spec(
                    format!("linux.sysctl.{k}"),
                    "not a valid sysctl name",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn type_errors_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":"root","gid":0},"cwd":"/"}}"#,
        );
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("process.user.uid"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            r#"{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":[],"cwd":"/"},
               "linux":{"namespaces":[{"type":"mount"}]}}"#,
        );
        let s = load(d.path()).unwrap();
        let e = validate(&s, true).unwrap_err().to_string();
        assert!(e.contains("process.args"), "{e}");
    }

    #[test]
    fn newer_versions_and_time_namespace_are_accepted() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            r#"{"ociVersion":"1.3.0","process":{"user":{"uid":0,"gid":0},"args":["true"],"cwd":"/"},
               "linux":{"namespaces":[{"type":"mount"},{"type":"time"},{"type":"pid"}]}}"#,
        );
        let s = load(d.path()).unwrap();
        validate(&s, true).unwrap();
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["true"],"cwd":"/"},
               "linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}}"#,
        );
        let s = load(d.path()).unwrap();
        let e = validate(&s, true).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings"), "{e}");
    }
}
