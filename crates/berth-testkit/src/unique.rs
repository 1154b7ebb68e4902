//! Unique names for kernel-global objects (the kernel may be shared with other engines).

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call, e.g. `bt3f2a1` — prefix + pid + counter,
/// at most 15 bytes so it fits an interface name.
pub fn name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let s = format!("{prefix}{:x}{n:x}", std::process::id());
    s.chars().take(15).collect()
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_differ_and_fit_ifnames() {
        let a = super::name("bt");
        let b = super::name("bt");
        assert_ne!(a, b);
        assert!(a.len() <= 15);
    }
}
