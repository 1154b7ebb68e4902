//! Is a binary usable as `--init` inside any image? It must exist and be statically linked:
//! an ELF with a `PT_INTERP` program header needs the host's dynamic loader and libc, which
//! a busybox or scratch image does not have, and would fail with a confusing "no such file".

use std::io::Read;
use std::path::Path;

const PT_INTERP: u32 = 3;

/// `Ok` when `path` is a 64-bit little-endian ELF without an interpreter; otherwise an error
/// that says how to get a usable one.
pub fn check_init(path: &Path) -> Result<(), String> {
    let how = "build it with scripts/build-init.sh (a static berth-init next to berth)";
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("--init: init binary {}: {e}; {how}", path.display()))?;
    let mut buf = Vec::new();
    // Program headers sit near the start of the file; 64 KiB is plenty.
    f.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| format!("--init: read {}: {e}", path.display()))?;
    match has_interpreter(&buf) {
        Some(false) => Ok(()),
        Some(true) => Err(format!(
            "--init: init binary {} is dynamically linked and cannot run inside an image; {how}",
            path.display()
        )),
        None => Err(format!(
            "--init: init binary {} is not a 64-bit ELF executable; {how}",
            path.display()
        )),
    }
}

/// `Some(true)` when the ELF image has a PT_INTERP header, `None` when it is not an ELF64 LE.
fn has_interpreter(b: &[u8]) -> Option<bool> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    };
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    if phentsize < 4 {
        return None;
    }
    for i in 0..phnum {
        if u32_at(phoff.checked_add(i.checked_mul(phentsize)?)?)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_is_dynamic_and_refused() {
        let exe = std::env::current_exe().unwrap();
        let err = check_init(&exe).unwrap_err();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn missing_and_non_elf_files_are_refused() {
        let err = check_init(Path::new("/no/such/berth-init")).unwrap_err();
        assert!(err.contains("scripts/build-init.sh"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        assert!(check_init(&p).unwrap_err().contains("not a 64-bit ELF"));
    }

    #[test]
    fn busybox_static_is_accepted() {
        // Debian's busybox-static is a static ELF; .ci/run installs it.
        check_init(Path::new("/bin/busybox")).unwrap();
    }
}
