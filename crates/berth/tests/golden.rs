//! Golden JSON, root tier: the replies of `/containers/{id}/json`, `/containers/json`,
//! `/images/json`, `/images/{name}/json`, `/version` and `/info` from a live daemon are
//! checked against the v1.47 swagger's field names and types (fixtures/…-types.json:
//! every field berth sends must exist in the swagger with that type), plus the fields the
//! docker CLI and SDKs read (docker-api-notes §6) must be present.

mod common;

use serde_json::Value;

use common::{ok, registry, Daemon};

fn schemas() -> Value {
    serde_json::from_str(include_str!("fixtures/engine-api-v1.47-types.json"))
        .expect("fixture JSON")
}

/// Type errors and unknown fields of `v` against `schema`.
fn check(v: &Value, schema: &Value, path: &str, errs: &mut Vec<String>) {
    let nullable = schema
        .get("x-nullable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    if v.is_null() {
        // Go marshals nil slices, maps and pointers as null.
        if !(nullable || matches!(ty, "array" | "object" | "")) {
            errs.push(format!("{path}: null where the swagger says {ty}"));
        }
        return;
    }
    let good = match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    };
    if !good {
        errs.push(format!("{path}: {v} is not {ty}"));
        return;
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(x, items, &format!("{path}[{i}]"), errs);
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        let extra = schema.get("additionalProperties");
        for (k, x) in obj {
            match (props.and_then(|p| p.get(k)), extra) {
                (Some(s), _) => check(x, s, &format!("{path}.{k}"), errs),
                (None, Some(s)) => check(x, s, &format!("{path}.{k}"), errs),
                (None, None) if props.is_some() => {
                    errs.push(format!("{path}.{k}: not in the swagger"))
                }
                _ => {}
            }
        }
    }
}

#[track_caller]
fn conforms(v: &Value, def: &str, must_have: &[&str]) {
    let s = schemas();
    let mut errs = Vec::new();
    check(v, &s[def], def, &mut errs);
    for k in must_have {
        if v.pointer(&format!("/{}", k.replace('.', "/"))).is_none() {
            errs.push(format!("{def}: required field {k} missing"));
        }
    }
    assert!(
        errs.is_empty(),
        "{def} does not match the swagger:\n{}\n{v:#}",
        errs.join("\n")
    );
}

fn get(d: &Daemon, path: &str) -> Value {
    let (s, _, b) = d.raw("GET", path, None).expect("reply");
    assert_eq!(s, 200, "{path}: {b}");
    serde_json::from_str(&b).unwrap_or_else(|e| panic!("{path}: {e}: {b}"))
}

#[test]
fn golden_replies_match_the_swagger() {
    if !berth_testkit::require_root("golden_replies_match_the_swagger") {
        return;
    }
    let (_reg, img) = registry();
    let d = Daemon::start();
    ok(&d, &d.berth(&["pull", &img]));
    let web = d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-m",
        "32m",
        "-l",
        "tier=front",
        &img,
        "sleep",
        "60",
    ]);
    ok(&d, &web);
    let id = web.stdout.trim().to_string();

    let v = get(&d, "/v1.47/version");
    conforms(
        &v,
        "SystemVersion",
        &[
            "Version",
            "ApiVersion",
            "MinAPIVersion",
            "Os",
            "Arch",
            "KernelVersion",
            "Components",
            "Platform.Name",
        ],
    );
    assert_eq!(
        (
            v["ApiVersion"].as_str(),
            v["MinAPIVersion"].as_str(),
            v["Os"].as_str()
        ),
        (Some("1.47"), Some("1.24"), Some("linux"))
    );

    let i = get(&d, "/v1.47/info");
    conforms(
        &i,
        "SystemInfo",
        &[
            "ID",
            "Containers",
            "ContainersRunning",
            "ContainersPaused",
            "ContainersStopped",
            "Images",
            "Driver",
            "DriverStatus",
            "Plugins",
            "MemoryLimit",
            "SwapLimit",
            "CpuCfsPeriod",
            "CpuCfsQuota",
            "CPUShares",
            "CPUSet",
            "PidsLimit",
            "IPv4Forwarding",
            "NFd",
            "SystemTime",
            "LoggingDriver",
            "CgroupDriver",
            "CgroupVersion",
            "KernelVersion",
            "OperatingSystem",
            "OSType",
            "Architecture",
            "NCPU",
            "MemTotal",
            "DockerRootDir",
            "Name",
            "ServerVersion",
            "Runtimes",
            "DefaultRuntime",
            "Swarm.LocalNodeState",
            "SecurityOptions",
        ],
    );
    assert_eq!(i["ContainersRunning"], 1);
    assert_eq!(i["Images"], 1);

    let list = get(&d, "/v1.47/containers/json?all=1");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    conforms(
        &list[0],
        "ContainerSummary",
        &[
            "Id",
            "Names",
            "Image",
            "ImageID",
            "Command",
            "Created",
            "Ports",
            "Labels",
            "State",
            "Status",
            "HostConfig.NetworkMode",
            "NetworkSettings.Networks",
            "Mounts",
        ],
    );
    assert_eq!(list[0]["Names"][0], "/web");
    assert_eq!(list[0]["State"], "running");
    assert_eq!(list[0]["Labels"]["tier"], "front");

    let c = get(&d, &format!("/v1.47/containers/{id}/json"));
    conforms(
        &c,
        "ContainerInspect",
        &[
            "Id",
            "Created",
            "Path",
            "Args",
            "State.Status",
            "State.Running",
            "State.Pid",
            "State.OOMKilled",
            "State.StartedAt",
            "State.FinishedAt",
            "Image",
            "Name",
            "RestartCount",
            "Driver",
            "Platform",
            "HostConfig.Memory",
            "GraphDriver.Name",
            "Mounts",
            "Config.Image",
            "Config.Cmd",
            "Config.Tty",
            "Config.Labels",
            "NetworkSettings.Networks",
        ],
    );
    assert_eq!(c["Id"], id);
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["HostConfig"]["Memory"], 32 << 20);
    assert!(c["State"]["Pid"].as_i64().unwrap_or(0) > 0, "{c:#}");

    let images = get(&d, "/v1.47/images/json");
    conforms(
        &images[0],
        "ImageSummary",
        &[
            "Id",
            "ParentId",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Size",
            "SharedSize",
            "Labels",
            "Containers",
        ],
    );
    assert!(images[0]["Id"]
        .as_str()
        .unwrap_or("")
        .starts_with("sha256:"));
    let ii = get(&d, &format!("/v1.47/images/{img}/json"));
    conforms(
        &ii,
        "ImageInspect",
        &[
            "Id",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Config",
            "Architecture",
            "Os",
            "Size",
            "RootFS.Type",
            "RootFS.Layers",
        ],
    );
    assert_eq!(ii["RootFS"]["Type"], "layers");
}

#[test]
fn checker_rejects_wrong_shapes() {
    // The checker itself must be able to fail.
    let s = schemas();
    let mut errs = Vec::new();
    check(
        &serde_json::json!({"Id": 5, "Bogus": 1, "SharedSize": "x"}),
        &s["ImageSummary"],
        "ImageSummary",
        &mut errs,
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
}
