#!/usr/bin/env bash
# Build berth-shim statically linked (glibc, +crt-static) and put it next to the release `berth`,
# where the engine looks for it (it uses it only when its build id matches `berth shim`'s).
#
# Why: the shim zygote and every shim it forks live as long as the daemon and the containers.
# Statically linked they map no dynamic loader and only the libc code they use: measured on
# the 6.18 VM, zygote 2.9 -> 2.1 MB RSS, each shim 2.8 -> 2.5 MB (docs/PERFORMANCE.md).
# `--target`: with +crt-static in RUSTFLAGS the proc-macro crates could not build for the host
# otherwise. Its own target dir, so the main build cache is not invalidated.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
CARGO_TARGET_DIR=target/static RUSTFLAGS=-Ctarget-feature=+crt-static \
  cargo build -q --release -p berth-shim --target "$host"
mkdir -p target/release
cp "target/static/$host/release/berth-shim" target/release/berth-shim.tmp
mv target/release/berth-shim.tmp target/release/berth-shim
