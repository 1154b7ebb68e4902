//! `berth shim` arguments.

use std::path::PathBuf;

/// Which runtime the shim drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// `berth runtime` (this binary's runtime face), the default.
    Berth,
    /// A runc-compatible binary (`--runtime /usr/sbin/runc`).
    Binary(PathBuf),
    /// The host-process test double (`--runtime process`): no isolation, tests only.
    Process,
}

/// Parsed `berth shim` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    pub log_path: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub runtime: RuntimeChoice,
    /// Internal: this process is the detached shim, not the launcher.
    pub detached: bool,
    /// Report the container's pid early, as a `{"early_pid":N}` line before the final report,
    /// as soon as the runtime has cloned it (the daemon then sets up the network in parallel).
    pub early_pid: bool,
}

pub const USAGE: &str =
    "usage: berth shim --id ID --bundle DIR --state-dir DIR --runtime-root DIR --log-path FILE \
[--tty] [--stdin] [--log-max-size BYTES] [--log-max-files N] [--runtime BIN|process] [--early-pid]";

/// `10485760`, `10k`, `10m`, `10MiB`, `1g` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match l.chars().last()? {
        'k' => (&l[..l.len() - 1], 1u64 << 10),
        'm' => (&l[..l.len() - 1], 1 << 20),
        'g' => (&l[..l.len() - 1], 1 << 30),
        _ => (l, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

impl Config {
    /// Parse argv (after `shim`). Errors say what is wrong and show the usage.
    pub fn parse(args: &[String]) -> Result<Config, String> {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut runtime_root = None;
        let mut log_path = None;
        let mut c = Config {
            id: String::new(),
            bundle: PathBuf::new(),
            state_dir: PathBuf::new(),
            runtime_root: PathBuf::new(),
            log_path: PathBuf::new(),
            tty: false,
            stdin: false,
            log_max_size: 10 << 20,
            log_max_files: 3,
            runtime: RuntimeChoice::Berth,
            detached: false,
            early_pid: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut val = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value; {USAGE}"))
            };
            match flag {
                "--id" => id = Some(val("--id")?),
                "--bundle" => bundle = Some(PathBuf::from(val("--bundle")?)),
                "--state-dir" => state_dir = Some(PathBuf::from(val("--state-dir")?)),
                "--runtime-root" => runtime_root = Some(PathBuf::from(val("--runtime-root")?)),
                "--log-path" => log_path = Some(PathBuf::from(val("--log-path")?)),
                "--tty" => c.tty = true,
                "--stdin" => c.stdin = true,
                "--detached" => c.detached = true,
                "--early-pid" => c.early_pid = true,
                "--log-max-size" => {
                    let v = val("--log-max-size")?;
                    c.log_max_size = parse_size(&v).ok_or_else(|| {
                        format!(
                            "--log-max-size {v:?} is not a size in bytes (e.g. 10485760 or 10m)"
                        )
                    })?;
                }
                "--log-max-files" => {
                    let v = val("--log-max-files")?;
                    c.log_max_files =
                        v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            format!("--log-max-files {v:?} must be a number >= 1")
                        })?;
                }
                "--runtime" => {
                    let v = val("--runtime")?;
                    c.runtime = if v == "process" {
                        RuntimeChoice::Process
                    } else {
                        RuntimeChoice::Binary(PathBuf::from(v))
                    };
                }
                _ => return Err(format!("unknown shim argument {a:?}; {USAGE}")),
            }
        }
        fn need<T>(v: Option<T>, n: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("missing {n}; {USAGE}"))
        }
        c.id = need(id, "--id")?;
        c.bundle = need(bundle, "--bundle")?;
        c.state_dir = need(state_dir, "--state-dir")?;
        c.runtime_root = need(runtime_root, "--runtime-root")?;
        c.log_path = need(log_path, "--log-path")?;
        if c.id.is_empty() || c.id.contains('/') || c.id.contains(char::is_whitespace) {
            return Err(format!(
                "container id {:?} must be non-empty, without '/' or spaces",
                c.id
            ));
        }
        Ok(c)
    }

    /// The argv that reproduces this config (the launcher passes it to the detached shim).
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--id".into(),
            self.id.clone(),
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--state-dir".into(),
            self.state_dir.display().to_string(),
            "--runtime-root".into(),
            self.runtime_root.display().to_string(),
            "--log-path".into(),
            self.log_path.display().to_string(),
            "--log-max-size".into(),
            self.log_max_size.to_string(),
            "--log-max-files".into(),
            self.log_max_files.to_string(),
        ];
        if self.tty {
            a.push("--tty".into());
        }
        if self.stdin {
            a.push("--stdin".into());
        }
        match &self.runtime {
            RuntimeChoice::Berth => {}
            RuntimeChoice::Binary(p) => a.extend(["--runtime".into(), p.display().to_string()]),
            RuntimeChoice::Process => a.extend(["--runtime".into(), "process".into()]),
        }
        if self.early_pid {
            a.push("--early-pid".into());
        }
        if self.detached {
            a.push("--detached".into());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_and_round_trips() {
        let c = Config::parse(&v(
            "--id c1 --bundle /b --state-dir /s --runtime-root /r --log-path /l/c.log --tty --stdin --log-max-size 1m --log-max-files=5 --runtime process",
        ))
        .unwrap();
        assert_eq!(c.log_max_size, 1 << 20);
        assert_eq!(c.log_max_files, 5);
        assert!(c.tty && c.stdin);
        assert_eq!(c.runtime, RuntimeChoice::Process);
        assert_eq!(Config::parse(&c.to_args()).unwrap(), c);
    }

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse(&v(
            "--id c1 --bundle /b --state-dir /s --runtime-root /r --log-path /l",
        ))
        .unwrap();
        assert_eq!((c.log_max_size, c.log_max_files), (10 << 20, 3));
        assert!(Config::parse(&v("--id c1"))
            .unwrap_err()
            .contains("--bundle"));
        assert!(Config::parse(&v("--bogus"))
            .unwrap_err()
            .contains("unknown"));
        assert!(Config::parse(&v(
            "--id a/b --bundle /b --state-dir /s --runtime-root /r --log-path /l"
        ))
        .is_err());
        assert!(Config::parse(&v(
            "--id c --bundle /b --state-dir /s --runtime-root /r --log-path /l --log-max-files 0"
        ))
        .is_err());
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("x"), None);
    }
}
