//! Memory-allocator settings for long-running processes (the daemon).

/// Cap glibc malloc at `n` arenas. glibc gives each thread that allocates concurrently an arena
/// of its own (up to 8 × cores) and rarely returns their pages, so a daemon whose tokio blocking
/// pool briefly ran a dozen threads keeps tens of MB of RSS afterwards. The daemon's work is
/// I/O-bound; two arenas cost no measurable contention. Returns false if glibc refused.
pub fn limit_malloc_arenas(n: i32) -> bool {
    // SAFETY: mallopt only changes an allocator tunable; M_ARENA_MAX with a positive value is
    // valid at any time (existing arenas stay, new threads share the capped set).
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// Give free heap pages back to the kernel (glibc `malloc_trim(0)`); true if any were released.
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arenas_can_be_capped_and_heap_trimmed() {
        assert!(super::limit_malloc_arenas(2));
        let v: Vec<Vec<u8>> = (0..1000).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(v);
        // 64 MB freed just now: some pages go back.
        assert!(super::trim_heap());
    }
}
