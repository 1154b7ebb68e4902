//! Memory-allocator settings for long-running processes (the daemon).
//!
//! glibc only: musl (the statically linked shim) has neither tunable, and there both calls
//! return false.

/// Cap glibc malloc at `n` arenas. glibc gives each thread that allocates concurrently an arena
/// of its own (up to 8 × cores) and rarely returns their pages, so a daemon whose tokio blocking
/// pool briefly ran a dozen threads keeps tens of MB of RSS afterwards. The daemon's work is
/// I/O-bound; two arenas cost no measurable contention. Returns false if glibc refused.
#[cfg(target_env = "gnu")]
pub fn limit_malloc_arenas(n: i32) -> bool {
    // SAFETY: mallopt only changes an allocator tunable; M_ARENA_MAX with a positive value is
    // valid at any time (existing arenas stay, new threads share the capped set).
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// Give free heap pages back to the kernel (glibc `malloc_trim(0)`); true if any were released.
#[cfg(target_env = "gnu")]
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(target_env = "gnu"))]
pub fn limit_malloc_arenas(_n: i32) -> bool {
    false
}

#[cfg(not(target_env = "gnu"))]
pub fn trim_heap() -> bool {
    false
}

/// The main executable's read-only `PT_LOAD` segments (code, read-only data), each as the
/// page-aligned inside (start, length). Segments that overlap `PT_GNU_RELRO` are left out:
/// RELRO holds pointers the loader relocated (anonymous copies that dropping would lose).
fn own_readonly_segments() -> Vec<(usize, usize)> {
    type Out = (Vec<(usize, usize)>, Option<(usize, usize)>);
    unsafe extern "C" fn first_object(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` whose `dlpi_phdr` points at
        // `dlpi_phnum` program headers; `out` is the `Out` handed to `dl_iterate_phdr`
        // below, alive for the whole call.
        unsafe {
            let info = &*info;
            let (segs, relro) = &mut *(out as *mut Out);
            for i in 0..usize::from(info.dlpi_phnum) {
                let ph = &*info.dlpi_phdr.add(i);
                let range = (
                    info.dlpi_addr as usize + ph.p_vaddr as usize,
                    ph.p_memsz as usize,
                );
                if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W == 0 {
                    segs.push(range);
                } else if ph.p_type == libc::PT_GNU_RELRO {
                    *relro = Some(range);
                }
            }
        }
        // The first object is the main program: stop there.
        1
    }
    let mut out: Out = (Vec::new(), None);
    // SAFETY: the callback only reads what the loader gives it and writes `out`, which
    // outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(first_object),
            &mut out as *mut Out as *mut libc::c_void,
        );
    }
    let page = page_size();
    let (segs, relro) = out;
    let overlaps = |(s, l): (usize, usize)| relro.is_some_and(|(rs, rl)| s < rs + rl && rs < s + l);
    segs.into_iter()
        .filter(|r| !overlaps(*r))
        .filter_map(|(start, len)| {
            // Only whole pages inside the segment: a page it shares with a neighbour stays.
            let lo = start.div_ceil(page) * page;
            let hi = (start + len) / page * page;
            (hi > lo).then_some((lo, hi - lo))
        })
        .collect()
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// The main thread's stack below `below` (an address in the caller's frame, minus a margin):
/// pages only deeper calls touched, which are dead now. From `/proc/self/maps`.
fn dead_stack(below: usize) -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let (lo, hi) = line.split_once(' ')?.0.split_once('-')?;
    let lo = usize::from_str_radix(lo, 16).ok()?;
    let hi = usize::from_str_radix(hi, 16).ok()?;
    if !(lo..hi).contains(&below) {
        // Not on the main thread's stack.
        return None;
    }
    let top = below.saturating_sub(STACK_MARGIN) / page_size() * page_size();
    (top > lo).then_some((lo, top - lo))
}

/// Stack kept below the caller's frame by [`release_startup_pages`]: room for the frames of
/// the calls it makes, and of whatever the caller calls next, without faulting.
const STACK_MARGIN: usize = 32 * 1024;

fn dontneed((start, len): (usize, usize)) -> std::io::Result<usize> {
    // SAFETY: callers pass page-aligned ranges inside mappings that hold nothing that cannot
    // be refilled: read-only file-backed segments of our own executable (MADV_DONTNEED only
    // drops their PTEs; later accesses refill them from the file) or stack below the live
    // frames (zero-filled on the next touch).
    let r = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(len)
}

/// Let go of the memory a long-lived process used only while it started: the page mappings
/// of its own code and read-only data (`MADV_DONTNEED` on the executable's read-only
/// segments) and the main thread's stack more than 32 KB below the caller's frame. Its resident
/// set then holds only what it runs from now on.
///
/// For a process that ran a lot of one-off code (the shim: set-up, the runtime helper's
/// fork, the report) and then loops in a small part of it. The file pages stay in the page
/// cache: code that runs again faults back in (a few µs per 64 KB). Text and read-only data
/// are never written (no text relocations in Rust executables), so nothing is lost. Call it
/// from the main thread. Returns the bytes of address space released.
#[inline(never)]
pub fn release_startup_pages() -> std::io::Result<usize> {
    // Every range first: reading /proc after a release would fault its code back in.
    let here = 0u8;
    let mut ranges = own_readonly_segments();
    ranges.extend(dead_stack(std::ptr::addr_of!(here) as usize));
    let mut total = 0;
    let mut first_err = None;
    for r in ranges {
        match dontneed(r) {
            Ok(n) => total += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// When a long-lived, single-threaded loop should call [`release_startup_pages`]: once it has
/// been idle for `after` since its last piece of one-off work, and at once at the start.
#[derive(Debug)]
pub struct IdleRelease {
    after: std::time::Duration,
    due: Option<std::time::Instant>,
}

impl IdleRelease {
    /// Due now: the set-up that ran before the loop is one-off work too.
    pub fn new(after: std::time::Duration) -> IdleRelease {
        IdleRelease {
            after,
            due: Some(std::time::Instant::now()),
        }
    }

    /// One-off work just ran (a request, a fork): release `after` from now.
    pub fn touch(&mut self) {
        self.due = Some(std::time::Instant::now() + self.after);
    }

    /// How long the loop may sleep before it is due (`None`: nothing pending).
    pub fn due_in(&self) -> Option<std::time::Duration> {
        self.due
            .map(|at| at.saturating_duration_since(std::time::Instant::now()))
    }

    /// Release if due; the bytes released, or `None` when it was not due.
    pub fn release_if_due(&mut self) -> Option<std::io::Result<usize>> {
        let due = self.due.is_some_and(|at| std::time::Instant::now() >= at);
        due.then(|| {
            self.due = None;
            release_startup_pages()
        })
    }
}

#[cfg(test)]
mod tests {
    /// Rss (kB) of the mapping that holds `addr`, from /proc/self/smaps.
    fn rss_of_mapping_kb(addr: usize) -> u64 {
        let s = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for l in s.lines() {
            if let Some((range, _)) = l.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = lo <= addr && addr < hi;
                        continue;
                    }
                }
            }
            if inside && l.starts_with("Rss:") {
                return l.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn idle_release_is_due_at_once_then_after_each_touch() {
        let after = std::time::Duration::from_secs(60);
        let mut r = super::IdleRelease::new(after);
        assert_eq!(r.due_in(), Some(std::time::Duration::ZERO));
        assert!(r.release_if_due().is_some_and(|x| x.is_ok()));
        assert_eq!(r.due_in(), None);
        assert!(r.release_if_due().is_none());
        r.touch();
        assert!(r.due_in().is_some_and(|d| d > after / 2));
        assert!(r.release_if_due().is_none());
    }

    #[test]
    fn released_code_runs_again_and_leaves_the_rss() {
        let segs = super::own_readonly_segments();
        // Code and read-only data at least (a PIE has a third: headers and symbols).
        assert!(segs.len() >= 2, "{segs:?}");
        let (start, len) = *segs.iter().max_by_key(|s| s.1).unwrap();
        assert!(len > 64 * 1024, "text of {len} bytes");
        // Read once so the reading code is resident on both sides of the release.
        rss_of_mapping_kb(start);
        let before = rss_of_mapping_kb(start);
        assert!(super::release_startup_pages().unwrap() >= len);
        let after = rss_of_mapping_kb(start);
        // The harness has run code that reading smaps does not need: at least one 64 KB
        // fault-around window of it is gone.
        assert!(after + 64 <= before, "text rss {before} kB -> {after} kB");
        // Code still runs (faulted back in from the page cache).
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[99], "63");
    }

    #[test]
    fn arenas_can_be_capped_and_heap_trimmed() {
        assert!(super::limit_malloc_arenas(2));
        let v: Vec<Vec<u8>> = (0..1000).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(v);
        // 64 MB freed just now: some pages go back.
        assert!(super::trim_heap());
    }
}
