#!/usr/bin/env bash
# Build berth-shim as a static executable whose steady-state code is laid out together, and put
# it next to the release `berth`, where the engine looks for it (it uses it only when its build
# id matches `berth shim`'s).
#
# Why (docs/PERFORMANCE.md, "Shim memory"): the shim zygote and every shim it forks live as
# long as the daemon and the containers, and their resident set is mostly code pages. The
# kernel maps code 64 KB around every page fault ("fault-around"), so what counts is how many
# 64 KB windows of the binary a shim touches, not how many bytes of code it runs.
# - Static: no dynamic loader, no shared libc mapped whole windows at a time.
# - lld's --symbol-ordering-file puts the functions of the shim's steady state (the poll loop,
#   the json-file log writer, the allocator, a few libc calls) side by side in ~150 KB near the
#   start of .text, instead of spread over 2 MB: a shim copying output touches 3-4 windows of
#   text instead of ~14. The shim drops the mappings of everything else once idle
#   (berth_sys::memory::release_startup_pages), and so does the zygote.
# - The list of symbols is made from the first link (their mangled names carry hashes), then
#   only the final binary is linked again with it (`cargo rustc`, same flags otherwise).
# - glibc, not musl: `SHIM_TARGET=x86_64-unknown-linux-musl` builds the same with musl, and
#   idle shims come out the same size (0.56 MB), but musl's allocator and memcpy made each
#   container create ~0.7 ms slower (the runtime's steps, measured from the start timeline).
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
target=${SHIM_TARGET:-$host}
extra=()
if [ "$target" != "$host" ] && [ ! -d "$sysroot/lib/rustlib/$target" ]; then
  echo "build-static-shim: the $target target is not installed; building for $host" >&2
  target=$host
fi
# glibc links statically only when asked; musl always does.
[ "$target" = "$host" ] && extra=(-C target-feature=+crt-static)
# rustup ships lld with the toolchain; gcc finds it through -B.
gcc_ld="$sysroot/lib/rustlib/$host/bin/gcc-ld"
export CARGO_TARGET_DIR=target/static
export RUSTFLAGS="-C link-arg=-fuse-ld=lld -C link-arg=-B$gcc_ld ${extra[*]}"
cargo build -q --release -p berth-shim --target "$target"
bin="target/static/$target/release/berth-shim"

# The steady state, by demangled name: the shim's loop and log writer, the allocator, the
# clock, rustix's syscalls, UTF-8 checks, and the libc functions they end in.
order="target/static/shim-symbol-order.txt"
paste -d'\t' <(nm -p --defined-only "$bin") <(nm -p -C --defined-only "$bin") | awk -F'\t' '
{
  split($1, m, " "); t = m[2]
  if (t != "t" && t != "T" && t != "W" && t != "w") next
  d = $2; sub(/^[0-9a-f]+ [A-Za-z] /, "", d)
  if (d ~ /berth_shim::(server|logfile|conn|fdio)::/ || d ~ /berth_sys::memory::/ ||
      d ~ /^<?alloc::(raw_vec|vec|alloc)::/ || d ~ /__rust_(alloc|dealloc|realloc)|__rdl_|__rg_/ ||
      d ~ /std::sys::pal::unix::time|std::time::/ || d ~ /^<?rustix::/ ||
      d ~ /^<?core::str::(lossy|validations|converts)/ ||
      d ~ /^(malloc|free|__libc_malloc_impl|__libc_free|__libc_malloc|alloc_slot|alloc_group|get_meta|enframe|nontrivial_free|__malloc_[a-z_]+|__clock_gettime|clock_gettime|__syscall_ret|memcpy|memmove|memset|memchr|__madvise|madvise|poll|__poll|read|write|__errno_location|cgt_init|__vdsosym|__lock|__unlock)$/ ||
      d ~ /^(_int_(malloc|free|realloc)|__libc_(calloc|realloc|read|write)|__(read|write)|__GI___poll|tcache_[a-z_]+|malloc_consolidate|unlink_chunk)$/ ||
      d ~ /^__(memmove|memcpy|memset|memchr|memrchr)_[a-z0-9_]+$/ ||
      (d ~ /drop_in_place/ && d ~ /berth_shim|alloc::vec::Vec<alloc::string|alloc::vec::Vec<u8>/))
    print m[3]
}' >"$order"
if [ ! -s "$order" ]; then
  echo "build-static-shim: no symbols matched (is nm installed?); keeping the unordered link" >&2
else
  cargo rustc -q --release -p berth-shim --bin berth-shim --target "$target" -- \
    -C link-arg=-Wl,--symbol-ordering-file="$PWD/$order" -C link-arg=-Wl,--no-warn-symbol-ordering
fi
mkdir -p target/release
cp "$bin" target/release/berth-shim.tmp
mv target/release/berth-shim.tmp target/release/berth-shim
