//! `docker import --change` / `docker commit --change`: Dockerfile instructions applied to an
//! image's container config (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `USER`,
//! `WORKDIR`, `VOLUME`, `STOPSIGNAL`, `ONBUILD`, `HEALTHCHECK NONE|CMD`), as moby's
//! `BuildFromConfig` applies them.

use std::collections::BTreeMap;

use crate::config::{ContainerConfig, Healthcheck};

/// A change that is not one of the allowed instructions, or is malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    #[error("{instruction} requires {what}")]
    Malformed {
        instruction: String,
        what: &'static str,
    },
}

/// A JSON array of strings (exec form), or `None` (shell form).
fn exec_form(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn shell_or_exec(args: &str) -> Vec<String> {
    exec_form(args).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.trim().into()])
}

/// Splits `a=b "c d"=e f='g h'` into words, honouring quotes and backslashes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// `k=v k2=v2` pairs, or the legacy `k v w` (the rest is the value).
fn pairs(instruction: &str, args: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let malformed = |what| ChangeError::Malformed {
        instruction: instruction.to_string(),
        what,
    };
    let w = words(args);
    if w.is_empty() {
        return Err(malformed("at least one argument"));
    }
    if !w[0].contains('=') {
        let t = args.trim();
        let (k, v) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| malformed("a key and a value"))?;
        return Ok(vec![(k.to_string(), words(v.trim()).join(" "))]);
    }
    w.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| malformed("key=value pairs"))
        })
        .collect()
}

/// Applies `changes` in order to `cfg`.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    let mut cmd_set = false;
    for line in changes {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (ins, args) = line
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((line, ""));
        let upper = ins.to_ascii_uppercase();
        let need = |what| ChangeError::Malformed {
            instruction: upper.clone(),
            what,
        };
        match upper.as_str() {
            "CMD" => {
                cfg.cmd = Some(shell_or_exec(args));
                cmd_set = true;
            }
            "ENTRYPOINT" => {
                cfg.entrypoint = Some(shell_or_exec(args));
                if !cmd_set {
                    cfg.cmd = None;
                }
            }
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs("ENV", args)? {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs("LABEL", args)? {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                let w = words(args);
                if w.is_empty() {
                    return Err(need("at least one port"));
                }
                for p in w {
                    let key = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(key, serde_json::json!({}));
                }
            }
            "USER" => {
                if args.is_empty() {
                    return Err(need("exactly one argument"));
                }
                cfg.user = Some(args.to_string());
            }
            "WORKDIR" => {
                if args.is_empty() {
                    return Err(need("exactly one argument"));
                }
                let dir = if args.starts_with('/') {
                    args.to_string()
                } else {
                    let base = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
                    format!("{}/{args}", base.trim_end_matches('/'))
                };
                cfg.working_dir = Some(dir);
            }
            "STOPSIGNAL" => {
                if args.is_empty() {
                    return Err(need("exactly one argument"));
                }
                cfg.stop_signal = Some(args.to_string());
            }
            "VOLUME" => {
                let vols = exec_form(args).unwrap_or_else(|| words(args));
                if vols.is_empty() {
                    return Err(need("at least one argument"));
                }
                let map = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for v in vols {
                    map.insert(v, serde_json::json!({}));
                }
            }
            "ONBUILD" => {
                if args.is_empty() {
                    return Err(need("an instruction"));
                }
                cfg.on_build
                    .get_or_insert_with(Vec::new)
                    .push(args.to_string());
            }
            "HEALTHCHECK" => {
                let (kind, rest) = args
                    .split_once(char::is_whitespace)
                    .map(|(a, b)| (a, b.trim()))
                    .unwrap_or((args, ""));
                let test = match kind.to_ascii_uppercase().as_str() {
                    "NONE" if rest.is_empty() => vec!["NONE".to_string()],
                    "CMD" if !rest.is_empty() => match exec_form(rest) {
                        Some(mut v) => {
                            v.insert(0, "CMD".into());
                            v
                        }
                        None => vec!["CMD-SHELL".into(), rest.to_string()],
                    },
                    _ => {
                        return Err(need(
                            "NONE or CMD <command> (options are not supported here)",
                        ))
                    }
                };
                cfg.healthcheck = Some(Healthcheck {
                    test: Some(test),
                    ..Default::default()
                });
            }
            _ => return Err(ChangeError::NotAllowed(ins.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(ch: &[&str]) -> Result<ContainerConfig, ChangeError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &ch.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn instructions() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENV A=1 B=\"two words\"",
            "env C three four",
            "ENV A=override",
            "EXPOSE 80 53/UDP",
            "LABEL maintainer=me version=\"1 0\"",
            "USER 1000:1000",
            "WORKDIR /app",
            "WORKDIR sub",
            "VOLUME [\"/data\", \"/logs\"]",
            "STOPSIGNAL SIGQUIT",
            "HEALTHCHECK CMD true",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "C=three four", "A=override"]
        );
        let ports: Vec<String> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(c.labels.unwrap()["version"], "1 0");
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/app/sub"));
        assert_eq!(c.volumes.unwrap().len(), 2);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(
            c.healthcheck.unwrap().test.unwrap(),
            vec!["CMD-SHELL", "true"]
        );
    }

    #[test]
    fn shell_form_and_entrypoint_reset() {
        let c = apply(&["CMD echo hi", "ENTRYPOINT /bin/app"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        let c = apply(&["ENTRYPOINT [\"/bin/app\"]"]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/app"]);
        assert!(c.cmd.is_none());
    }

    #[test]
    fn refused() {
        assert_eq!(
            apply(&["RUN rm -rf /"]).unwrap_err().to_string(),
            "RUN is not a valid change command"
        );
        assert!(apply(&["USER"]).is_err());
        assert!(apply(&["ENV"]).is_err());
        assert!(apply(&["HEALTHCHECK --interval=5s CMD true"]).is_err());
    }
}
