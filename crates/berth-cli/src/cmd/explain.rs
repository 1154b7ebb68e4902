//! `berth explain CONTAINER`: how a container works under the hood — its process,
//! namespaces, cgroups, mounts, network and security, and how long each step of its
//! start took — from `GET /berth/containers/{id}/explain`. `--format json` prints the
//! daemon's JSON as is; the default renders it for people.

use berth_client::Client;
use serde_json::Value;
use std::fmt::Write;

use crate::app::ExplainArgs;
use crate::{CmdResult, Failure};

static CLIENT_START: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Note when this CLI process started (first thing in `main`). The time before `main`
/// (exec, loading a large binary) is part of the run too: the kernel's
/// `/proc/thread-self/schedstat` says how long this thread has been on a CPU and waiting
/// for one since it was forked, which is that time as long as it did not sleep.
pub fn mark_client_start() {
    CLIENT_START.get_or_init(|| {
        let now = std::time::SystemTime::now();
        let before_main = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .map(|s| {
                s.split_whitespace()
                    .take(2)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .unwrap_or(0);
        now - std::time::Duration::from_nanos(before_main)
    });
}

/// Add the client's share of a run to the create request's query: when this process
/// started and how long it pulled. The daemon puts both in the start timeline.
pub fn client_times(q: berth_client::Query, pulled: std::time::Duration) -> berth_client::Query {
    let Some(start) = CLIENT_START.get() else {
        return q;
    };
    let Ok(since) = start.duration_since(std::time::UNIX_EPOCH) else {
        return q;
    };
    let q = q.add("berth_client_start_us", since.as_micros());
    if pulled.is_zero() {
        q
    } else {
        q.add("berth_pull_us", pulled.as_micros())
    }
}

/// Fetch the explanation of `id`.
pub async fn fetch(c: &Client, id: &str) -> Result<Value, Failure> {
    c.get_json::<Value>(&format!("/berth/containers/{id}/explain"))
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Failure::new(1, format!("Error: {}", e.message()))
            } else {
                Failure::new(1, format!("berth: {e}"))
            }
        })
}

/// `json` or `text` (the default); anything else is an error that says what to use.
fn check_format(f: Option<&str>) -> Result<bool, Failure> {
    match f.unwrap_or("text") {
        "json" | "{{json .}}" => Ok(true),
        "text" | "" => Ok(false),
        other => Err(Failure::new(
            125,
            format!("unknown explain format {other:?}: use --format json or leave it out"),
        )),
    }
}

pub async fn explain(c: &Client, a: ExplainArgs) -> CmdResult {
    let json = check_format(a.format.as_deref())?;
    let v = fetch(c, &a.container).await?;
    print!("{}", output(&v, json));
    Ok(0)
}

/// `run --explain[=json]`: print the explanation right after the start.
pub async fn after_run(c: &Client, id: &str, format: &str, to_stderr: bool) -> Result<(), Failure> {
    let json = check_format(Some(format))?;
    let v = fetch(c, id).await?;
    let out = output(&v, json);
    if to_stderr {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
    Ok(())
}

/// Validate `--explain`'s value before anything is created.
pub fn validate(format: Option<&str>) -> Result<(), Failure> {
    format
        .map(|f| check_format(Some(f)).map(|_| ()))
        .unwrap_or(Ok(()))
}

fn output(v: &Value, json: bool) -> String {
    if json {
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
    } else {
        render(v)
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn ms(us: &Value) -> String {
    format!("{:.1} ms", us.as_f64().unwrap_or(0.0) / 1000.0)
}

/// The explanation for people: one section per area, each with the place in the kernel
/// the facts came from, so the reader can look for themselves.
pub fn render(v: &Value) -> String {
    let mut o = String::new();
    let id = s(&v["id"]);
    let short = &id[..id.len().min(12)];
    let _ = writeln!(
        o,
        "Container {} ({short}), image {}: {}",
        s(&v["name"]),
        s(&v["image"]),
        s(&v["status"])
    );
    if !s(&v["note"]).is_empty() {
        let _ = writeln!(o, "\n  {}", s(&v["note"]));
    }

    let p = &v["process"];
    if p.is_object() {
        let _ = writeln!(o, "\nPROCESS  (/proc/<pid>/status, cmdline, uid_map)");
        let _ = writeln!(
            o,
            "  host PID {} is PID {} inside its PID namespace (NSpid: {})",
            s(&p["host_pid"]),
            s(&p["pid_inside"]),
            arr(&p["ns_pids"])
                .iter()
                .map(s)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            o,
            "  command   {}",
            arr(&p["command"])
                .iter()
                .map(s)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            o,
            "  shim PID  {} (holds stdio, writes the log, reaps the exit)",
            s(&p["shim_pid"])
        );
        let map = |m: &Value| {
            arr(m)
                .iter()
                .map(|l| {
                    let l = arr(l);
                    format!("{}->{} ({})", s(&l[0]), s(&l[1]), s(&l[2]))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "  uid map   {}   gid map {}   (inside->host (count))",
            map(&p["uid_map"]),
            map(&p["gid_map"])
        );
    }

    let ns = arr(&v["namespaces"]);
    if !ns.is_empty() {
        let _ = writeln!(
            o,
            "\nNAMESPACES  (readlink /proc/<pid>/ns/*, compared with {}/*{})",
            s(&ns[0]["compared_with"]),
            if s(&ns[0]["compared_with"]) == "/proc/1/ns" {
                ""
            } else {
                ", the daemon's: PID 1's are not readable here"
            }
        );
        for n in ns {
            let owner = match s(&n["owner"]).as_str() {
                "own" => "own ",
                "host" => "HOST",
                _ => "?   ",
            };
            let _ = writeln!(
                o,
                "  {:<7} {:<12} {owner}  {}",
                s(&n["kind"]),
                s(&n["inode"]),
                s(&n["isolates"])
            );
        }
    }

    let cg = &v["cgroups"];
    if cg.is_object() {
        let _ = writeln!(
            o,
            "\nCGROUPS {}  (/proc/<pid>/cgroup, then the files in each directory)",
            s(&cg["version"])
        );
        for h in arr(&cg["hierarchies"]) {
            let _ = writeln!(o, "  {:<14} {}", s(&h["controllers"]), s(&h["dir"]));
        }
        let _ = writeln!(o, "  limits (value from the file, live usage beside it):");
        for l in arr(&cg["limits"]) {
            let file = s(&l["file"]);
            let fname = file.rsplit('/').next().unwrap_or("");
            let usage = if s(&l["usage_human"]).is_empty() {
                String::new()
            } else {
                let uf = s(&l["usage_file"]);
                format!(
                    "   using {} ({})",
                    s(&l["usage_human"]),
                    uf.rsplit('/').next().unwrap_or("")
                )
            };
            let _ = writeln!(
                o,
                "    {:<30} {:<26} {}{usage}",
                s(&l["what"]),
                fname,
                s(&l["human"])
            );
        }
    }

    let fs = &v["filesystem"];
    let ov = &fs["overlay"];
    let mounted = fs["mounted"].as_bool().unwrap_or(false);
    let _ = writeln!(
        o,
        "\nFILESYSTEM  ({})",
        if mounted {
            "/proc/<pid>/mountinfo; lowerdirs matched to the image's layer snapshots"
        } else {
            "not mounted now: the stored layer stack"
        }
    );
    let _ = writeln!(
        o,
        "  {}: image layers read-only below, the container's writes above",
        if mounted {
            "/ is an overlay"
        } else {
            "its / is the overlay of"
        }
    );
    for (i, l) in arr(&ov["lower"]).iter().enumerate() {
        let chain = s(&l["chain_id"]);
        let what = if s(&l["kind"]) == "init" {
            "the image's init layer: mount points it lacks (/proc, /etc/hosts, ...), shared by its containers"
                .to_string()
        } else if chain.is_empty() {
            "not one of the image's layers".to_string()
        } else {
            format!(
                "layer {} chain {}",
                short_digest(&s(&l["diff_id"])),
                short_digest(&chain)
            )
        };
        let _ = writeln!(o, "    lower[{i}] {what}\n             {}", s(&l["dir"]));
    }
    let _ = writeln!(o, "    upper    {}", s(&ov["upper"]));
    let _ = writeln!(o, "    work     {}", s(&ov["work"]));
    let mounts = arr(&fs["mounts"]);
    if !mounts.is_empty() {
        let _ = writeln!(o, "  other mounts:");
        for m in mounts {
            let src = if s(&m["root"]) != "/" && !s(&m["root"]).is_empty() {
                format!("{}:{}", s(&m["source"]), s(&m["root"]))
            } else {
                s(&m["source"])
            };
            let _ = writeln!(
                o,
                "    {:<22} {:<8} {:<14} {:<3} {}",
                s(&m["target"]),
                s(&m["fstype"]),
                s(&m["purpose"]),
                if m["read_only"].as_bool() == Some(true) {
                    "ro"
                } else {
                    "rw"
                },
                src
            );
        }
    }

    let net = &v["network"];
    if net.is_object() {
        let _ = writeln!(
            o,
            "\nNETWORK  mode {}, netns {}{}",
            s(&net["mode"]),
            s(&net["netns_inode"]),
            if net["host_netns"].as_bool() == Some(true) {
                " (the host's)"
            } else {
                ""
            }
        );
        for i in arr(&net["interfaces"]) {
            let _ = writeln!(
                o,
                "  {} (ifindex {}) in the container <-veth-> {} (ifindex {}) on the host, port of bridge {} (network {})",
                s(&i["container_ifname"]),
                s(&i["container_ifindex"]),
                s(&i["host_veth"]),
                s(&i["host_ifindex"]),
                s(&i["bridge"]),
                s(&i["network"])
            );
            let _ = writeln!(
                o,
                "    ip {}/{}  mac {}  gateway {}  mtu {}",
                s(&i["ip"]),
                s(&i["prefix_len"]),
                s(&i["mac"]),
                s(&i["gateway"]),
                s(&i["mtu"])
            );
        }
        for p in arr(&net["ports"]) {
            let _ = writeln!(
                o,
                "  port {}:{} -> {}:{}/{}, by these rules in nft table ip {}:",
                s(&p["host_ip"]),
                s(&p["host_port"]),
                s(&p["container_ip"]),
                s(&p["container_port"]),
                s(&p["proto"]),
                s(&net["nft_table"])
            );
            for r in arr(&p["rules"]) {
                let _ = writeln!(o, "    {}", s(r));
            }
        }
        let dns = arr(&net["dns_servers"]).iter().map(s).collect::<Vec<_>>();
        if !dns.is_empty() {
            let _ = writeln!(
                o,
                "  DNS server(s) {} (from its /etc/resolv.conf)",
                dns.join(", ")
            );
        }
    }

    let sec = &v["security"];
    if sec.is_object() {
        let _ = writeln!(o, "\nSECURITY  (/proc/<pid>/status; the bundle's OCI spec)");
        let caps = |k: &str| {
            arr(&sec[k])
                .iter()
                .map(|c| s(c).trim_start_matches("CAP_").to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            o,
            "  CapEff {}: {}",
            s(&sec["cap_eff_hex"]),
            caps("cap_eff")
        );
        let _ = writeln!(
            o,
            "  CapBnd {}: {}",
            s(&sec["cap_bnd_hex"]),
            caps("cap_bnd")
        );
        let _ = writeln!(
            o,
            "  seccomp {} ({} filter(s)), profile {}: {} syscalls allowed by name, default action {}",
            s(&sec["seccomp_mode"]),
            s(&sec["seccomp_filters"]),
            s(&sec["seccomp_profile"]),
            s(&sec["seccomp_allowed_syscalls"]),
            s(&sec["seccomp_default_action"])
        );
        let _ = writeln!(o, "  no_new_privs {}", s(&sec["no_new_privs"]));
        let masked: Vec<String> = arr(&sec["masked_paths"])
            .iter()
            .map(|m| {
                let st = s(&m["state"]);
                if st == "masked" {
                    s(&m["path"])
                } else {
                    format!("{} ({st})", s(&m["path"]))
                }
            })
            .collect();
        if !masked.is_empty() {
            let _ = writeln!(o, "  masked paths: {}", masked.join(" "));
        }
    }

    let tl = &v["timeline"];
    if tl.is_object() {
        let _ = writeln!(
            o,
            "\nSTART TIMELINE  ({}measured by the engine as it happened)",
            if tl["includes_create"].as_bool() == Some(true) {
                "create + start, "
            } else {
                "last start, "
            }
        );
        for st in arr(&tl["steps"]) {
            let _ = writeln!(
                o,
                "  {:>9}  {:<7} {:<42} {}",
                ms(&st["duration_us"]),
                s(&st["phase"]),
                s(&st["name"]),
                s(&st["what"])
            );
        }
        let _ = writeln!(o, "  {:>9}  total", ms(&tl["total_us"]));
    }
    o
}

/// `sha256:abcdef...` → `sha256:abcdef012345`.
fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(check_format(Some("json")).unwrap());
        assert!(!check_format(None).unwrap());
        assert!(check_format(Some("yaml")).is_err());
    }

    #[test]
    fn stopped_container_shows_the_note_and_no_live_sections() {
        let v = serde_json::json!({
            "id": "0123456789abcdef", "name": "web", "image": "bb:1", "status": "exited",
            "running": false, "note": "container web is not running",
            "process": null, "namespaces": [], "cgroups": null, "network": null, "security": null,
            "filesystem": {"mounted": false, "overlay": {"lower": [{"dir": "/s/x/fs", "chain_id": "sha256:aaaa", "diff_id": "sha256:bbbb"}], "upper": "/u", "work": "/w"}, "mounts": []},
            "timeline": null
        });
        let t = render(&v);
        assert!(t.contains("not running"));
        assert!(!t.contains("PROCESS"));
        assert!(!t.contains("NAMESPACES"));
        assert!(t.contains("chain sha256:aaaa"));
        assert!(t.contains("not mounted now"));
    }
}
