//! berth-checker: a tiny static program run inside containers by two-sided tests. With no
//! arguments it prints one JSON object describing what it sees; with an action it does one
//! thing and reports (see `usage`). Only libc and std, so it builds static with
//! `-Ctarget-feature=+crt-static` and runs in any rootfs.

use std::fmt::Write as _;
use std::fs;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn arr(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn read(p: &str) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn num_or_null(v: Option<String>) -> String {
    match v {
        Some(s) if s.parse::<i64>().is_ok() => s,
        Some(s) => esc(&s),
        None => "null".into(),
    }
}

fn rlimit(res: libc::__rlimit_resource_t) -> String {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit struct for the duration of the call.
    let ok = unsafe { libc::getrlimit(res, &mut r) } == 0;
    if !ok {
        return "null".into();
    }
    let f = |v: u64| {
        if v == libc::RLIM_INFINITY {
            "-1".to_string()
        } else {
            v.to_string()
        }
    };
    format!("{{\"soft\":{},\"hard\":{}}}", f(r.rlim_cur), f(r.rlim_max))
}

fn report() -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut o = String::from("{");
    // SAFETY: these getters have no preconditions.
    let (pid, ppid) = unsafe { (libc::getpid(), libc::getppid()) };
    let _ = write!(o, "\"pid\":{pid},\"ppid\":{ppid}");
    let ids = |k: &str| {
        status_field(&status, k)
            .map(|v| arr(v.split_whitespace().map(String::from)))
            .unwrap_or_else(|| "[]".into())
    };
    let _ = write!(
        o,
        ",\"uid\":{},\"gid\":{},\"groups\":{}",
        ids("Uid:"),
        ids("Gid:"),
        ids("Groups:")
    );
    let hostname = read("/proc/sys/kernel/hostname").unwrap_or_default();
    let domain = read("/proc/sys/kernel/domainname").unwrap_or_default();
    let _ = write!(
        o,
        ",\"hostname\":{},\"domainname\":{}",
        esc(&hostname),
        esc(&domain)
    );
    for k in [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Umask",
        "SigIgn",
        "SigBlk",
    ] {
        let v = status_field(&status, &format!("{k}:")).unwrap_or_default();
        let _ = write!(o, ",{}:{}", esc(k), esc(&v));
    }
    // mounts
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = mi.lines().filter_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        Some(format!(
            "{{\"target\":{},\"fstype\":{},\"source\":{},\"options\":{},\"super\":{}}}",
            esc(pre.get(4)?),
            esc(post.first()?),
            esc(post.get(1).unwrap_or(&"")),
            esc(pre.get(5)?),
            esc(post.get(2).unwrap_or(&""))
        ))
    });
    let _ = write!(o, ",\"mounts\":{}", arr(mounts));
    // cgroup limits (v1 paths, then v2)
    let cg = [
        (
            "memory_limit",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory.max",
        ),
        (
            "pids_max",
            "/sys/fs/cgroup/pids/pids.max",
            "/sys/fs/cgroup/pids.max",
        ),
        (
            "cpu_quota",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu.max",
        ),
        ("cpu_period", "/sys/fs/cgroup/cpu/cpu.cfs_period_us", ""),
        (
            "cpu_shares",
            "/sys/fs/cgroup/cpu/cpu.shares",
            "/sys/fs/cgroup/cpu.weight",
        ),
    ];
    let mut cgs = Vec::new();
    for (k, v1, v2) in cg {
        let v = read(v1).or_else(|| if v2.is_empty() { None } else { read(v2) });
        cgs.push(format!("{}:{}", esc(k), num_or_null(v)));
    }
    let _ = write!(o, ",\"cgroup\":{{{}}}", cgs.join(","));
    let cgroup_file = read("/proc/self/cgroup").unwrap_or_default();
    let _ = write!(o, ",\"cgroup_file\":{}", esc(&cgroup_file));
    // network interfaces
    let dev = fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let ifs = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| esc(n.trim())));
    let _ = write!(o, ",\"interfaces\":{}", arr(ifs));
    // processes visible in /proc
    let mut pids: Vec<i64> = fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let _ = write!(
        o,
        ",\"processes\":{}",
        arr(pids.iter().map(|p| p.to_string()))
    );
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let _ = write!(o, ",\"cwd\":{}", esc(&cwd));
    let env = std::env::vars().map(|(k, v)| esc(&format!("{k}={v}")));
    let _ = write!(o, ",\"env\":{}", arr(env));
    let _ = write!(
        o,
        ",\"rlimits\":{{\"nofile\":{},\"nproc\":{},\"core\":{}}}",
        rlimit(libc::RLIMIT_NOFILE),
        rlimit(libc::RLIMIT_NPROC),
        rlimit(libc::RLIMIT_CORE)
    );
    o.push('}');
    o
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `try-syscall NAME`: call it harmlessly and print `{"syscall":..,"ret":..,"errno":..}`.
fn try_syscall(name: &str) -> i32 {
    let path = c"/tmp/.berth-checker-probe";
    // SAFETY: each call gets valid NUL-terminated paths or plain integers; none touch memory
    // we do not own.
    let ret: i64 = unsafe {
        match name {
            "mkdir" => libc::mkdir(path.as_ptr(), 0o700) as i64,
            "mkdirat" => libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o700) as i64,
            "unshare-user" => libc::unshare(libc::CLONE_NEWUSER) as i64,
            "unshare-ns" => libc::unshare(libc::CLONE_NEWNS) as i64,
            "clone3" => libc::syscall(libc::SYS_clone3, 0usize, 0usize),
            "sethostname" => libc::sethostname(c"x".as_ptr(), 1) as i64,
            "mount" => libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ) as i64,
            "chown" => libc::chown(c"/".as_ptr(), 0, 0) as i64,
            "reboot" => libc::syscall(libc::SYS_reboot, 0, 0, 0, 0),
            "getpid" => libc::getpid() as i64,
            _ => {
                eprintln!("checker: unknown syscall {name}");
                return 2;
            }
        }
    };
    let e = if ret < 0 { errno() } else { 0 };
    if name == "mkdir" || name == "mkdirat" {
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::rmdir(path.as_ptr()) };
    }
    println!("{{\"syscall\":{},\"ret\":{ret},\"errno\":{e}}}", esc(name));
    0
}

fn parse_size(s: &str) -> Option<usize> {
    let (n, mul) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<usize>().ok().map(|n| n * mul)
}

fn parse_secs(s: &str) -> Option<f64> {
    s.trim_end_matches('s').parse().ok()
}

fn usage() -> i32 {
    eprintln!(
        "usage: checker [report | try-syscall NAME | alloc SIZE | fork-bomb | spin DURATION | \
         write PATH | sleep DURATION | exit CODE]"
    );
    2
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        None | Some("report") => {
            println!("{}", report());
            0
        }
        Some("try-syscall") => match args.get(1) {
            Some(n) => try_syscall(n),
            None => usage(),
        },
        Some("alloc") => match args.get(1).and_then(|s| parse_size(s)) {
            Some(n) => {
                // Touch every page so the memory is really charged.
                let mut v: Vec<u8> = Vec::with_capacity(n);
                let mut i = 0;
                while i < n {
                    v.push(1);
                    i += 1;
                }
                let mut k = 0;
                while k < n {
                    v[k] = 2;
                    k += 4096;
                }
                println!("{{\"allocated\":{}}}", v.len());
                0
            }
            None => usage(),
        },
        Some("fork-bomb") => {
            let (mut ok, mut failed, mut last_errno) = (0, 0, 0);
            for _ in 0..200 {
                // SAFETY: the child only sleeps and exits; it never returns into main.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: sleep and _exit are async-signal-safe.
                    unsafe {
                        libc::sleep(5);
                        libc::_exit(0)
                    }
                } else if pid > 0 {
                    ok += 1;
                } else {
                    failed += 1;
                    last_errno = errno();
                }
            }
            println!("{{\"forked\":{ok},\"failed\":{failed},\"errno\":{last_errno}}}");
            0
        }
        Some("spin") => match args.get(1).and_then(|s| parse_secs(s)) {
            Some(secs) => {
                let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
                let mut x: u64 = 0;
                while std::time::Instant::now() < end {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                println!("{{\"spun\":{secs},\"x\":{}}}", x % 10);
                0
            }
            None => usage(),
        },
        Some("write") => match args.get(1) {
            Some(p) => match fs::write(p, b"berth") {
                Ok(()) => {
                    println!("{{\"write\":{},\"errno\":0}}", esc(p));
                    0
                }
                Err(e) => {
                    println!(
                        "{{\"write\":{},\"errno\":{}}}",
                        esc(p),
                        e.raw_os_error().unwrap_or(0)
                    );
                    1
                }
            },
            None => usage(),
        },
        Some("sleep") => match args.get(1).and_then(|s| parse_secs(s)) {
            Some(s) => {
                std::thread::sleep(std::time::Duration::from_secs_f64(s));
                0
            }
            None => usage(),
        },
        Some("exit") => args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
        Some(_) => usage(),
    };
    std::process::exit(code);
}
