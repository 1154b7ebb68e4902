#!/usr/bin/env bash
# Build berth-init (the `--init` PID 1) statically linked and put it next to berth in
# target/release and target/debug, where the daemon looks for it. Static because it runs
# inside images that have no libc; built in target/static so the different RUSTFLAGS do not
# invalidate the main build cache.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR=target/static RUSTFLAGS=-Ctarget-feature=+crt-static \
  cargo build -q --release -p berth-init
for d in target/release target/debug; do
  mkdir -p "$d"
  cp target/static/release/berth-init "$d/berth-init.tmp" && mv "$d/berth-init.tmp" "$d/berth-init"
done
