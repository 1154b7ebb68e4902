//! `BERTH_SHIM_BUILD_ID`: a hash of the sources a shim is built from (this crate, the runtime,
//! cgroups, sys). The engine starts the small `berth-shim` binary instead of `berth shim` only
//! when both report the same id, so a stale `berth-shim` left beside a newer `berth` (e.g. after
//! `cargo build -p berth`) is never used.

use std::path::Path;

const SOURCES: &[&str] = &[
    "src",
    "Cargo.toml",
    "../berth-runtime/src",
    "../berth-runtime/Cargo.toml",
    "../berth-cgroups/src",
    "../berth-cgroups/Cargo.toml",
    "../berth-sys/src",
    "../berth-sys/Cargo.toml",
];

/// FNV-1a, 64 bits: stable across toolchains, unlike `DefaultHasher`.
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn walk(path: &Path, h: &mut u64) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            walk(&e, h);
        }
    } else if let Ok(data) = std::fs::read(path) {
        fnv(h, path.to_string_lossy().as_bytes());
        fnv(h, &data);
    }
}

fn main() {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
        walk(Path::new(s), &mut h);
    }
    println!("cargo:rustc-env=BERTH_SHIM_BUILD_ID={h:016x}");
    // See crates/berth/build.rs: relative relocations packed as RELR.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
