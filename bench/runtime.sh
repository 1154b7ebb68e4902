#!/usr/bin/env bash
# OCI runtime start latency: `run` of `true` in the same busybox bundle, berth runtime vs runc
# vs crun (where installed and working), side by side in one hyperfine run. As root.
#
# crun refuses this host's hybrid cgroup layout unless hugetlb is mounted as a v1 hierarchy; set
# CRUN_HUGETLB_FIX=1 to do that (it changes the host's cgroup layout until reboot).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh
trap cleanup_common EXIT
RUNS=${RUNS:-50}

# BERTH=/path/to/berth skips the build
if [ -z "${BERTH:-}" ]; then
  cargo build --release -q -p berth
  BERTH=$PWD/target/release/berth
fi
bundle=$BENCH_TMP/bundle
mkdir -p "$bundle"
busybox_rootfs "$bundle/rootfs"
(cd "$bundle" && "$BERTH" runtime spec)
# `runc spec` gives a terminal process running sh; make it a non-terminal `true`.
jq '.process.terminal=false | .process.args=["true"]' "$bundle/config.json" > "$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"

if [ "${CRUN_HUGETLB_FIX:-0}" = 1 ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

cmds=("$BERTH runtime --root $BENCH_TMP/berth run --bundle $bundle bench-berth")
names=(berth)
if command -v runc >/dev/null; then
  cmds+=("runc --root $BENCH_TMP/runc run --bundle $bundle bench-runc"); names+=(runc)
fi
if command -v crun >/dev/null && crun --root "$BENCH_TMP/crun" run --bundle "$bundle" bench-crun-probe >/dev/null 2>&1; then
  cmds+=("crun --root $BENCH_TMP/crun run --bundle $bundle bench-crun"); names+=(crun)
else
  echo "crun skipped: not runnable on this host's cgroup layout as it comes ($(crun --root "$BENCH_TMP/crun" run --bundle "$bundle" bench-crun-probe 2>&1 | head -1)); see CRUN_HUGETLB_FIX" >&2
fi
cmds+=("unshare --fork --pid --mount --uts --ipc --net true"); names+=("floor: unshare")

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$BENCH_TMP/rt.json" "${cmds[@]}" >/dev/null
echo "## OCI bundle run of \`true\`, $(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores, $RUNS runs"
echo
echo "| runtime | median ms | mean ms | berth / this |"
echo "|---|---|---|---|"
base=$(jq -r '.results[0].median' "$BENCH_TMP/rt.json")
for i in "${!names[@]}"; do
  jq -r --arg n "${names[$i]}" --argjson b "$base" ".results[$i] | \"| \\(\$n) | \\(.median*1000*100|round/100) | \\(.mean*1000*100|round/100) | \\((\$b/.median)*1000|round/1000) |\"" "$BENCH_TMP/rt.json"
done
