#!/usr/bin/env bash
# The whole test suite: gates (fmt, clippy) then every tier (unit, root, e2e). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== build"; cargo build --workspace --all-targets
# The static, symbol-ordered shim that releases ship and bench/run.sh measures: e2e_static_shim
# runs containers through it.
echo "== static shim"; scripts/build-static-shim.sh
echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
