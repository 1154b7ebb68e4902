#!/usr/bin/env bash
# berth vs Debian's dockerd (and podman where installed), side by side in one run, on the same
# busybox image pulled from a loopback registry. Prints a markdown table of medians and ratios.
#
#   bench/run.sh            (as root; needs hyperfine, docker-registry, skopeo, busybox-static;
#                            docker.io/podman are optional anchors)
#
# Measures: `run --rm IMG true` (with and without network), daemon idle RSS, shim RSS with 10
# running containers, 50 x `run -d` in sequence, `stats --no-stream`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=${RUNS:-20}
cargo build --release -q -p berth
BERTH=$PWD/target/release/berth
B_SOCK=$BENCH_TMP/berth.sock
B_ROOT=/var/lib/berth-bench
B_EXEC=/run/berth-bench
cleanup() {
  "$BERTH" -H "unix://$B_SOCK" rm -f $("$BERTH" -H "unix://$B_SOCK" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  if [ -n "${DOCKER_SOCK:-}" ]; then
    docker -H "unix://$DOCKER_SOCK" rm -f $(docker -H "unix://$DOCKER_SOCK" ps -aq) >/dev/null 2>&1 || true
  fi
  cleanup_common
  rm -rf "$B_ROOT"
}
trap cleanup EXIT

start_registry
IMG=$REGISTRY/busybox:latest

setsid "$BERTH" daemon --data-root "$B_ROOT" --exec-root "$B_EXEC" -H "unix://$B_SOCK" \
  --cgroup-parent /berth-bench >"$BENCH_TMP/berthd.log" 2>&1 < /dev/null &
BERTHD=$!; PIDS+=($BERTHD)
for _ in $(seq 100); do "$BERTH" -H "unix://$B_SOCK" version >/dev/null 2>&1 && break; sleep 0.05; done
B="$BERTH -H unix://$B_SOCK"
$B pull -q "$IMG" >/dev/null

HAVE_DOCKER=0
if start_dockerd; then HAVE_DOCKER=1; D="docker -H unix://$DOCKER_SOCK"; $D pull -q "$IMG" >/dev/null; fi

hf() { # name, commands...
  local name=$1; shift
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_TMP/$name.json" "$@" >/dev/null 2>&1
  jq -r '.results[] | "\(.command)\t\(.median*1000)"' "$BENCH_TMP/$name.json"
}
row() { printf '| %s | %s | %s | %s |\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
med() { jq -r ".results[$2].median*1000" "$BENCH_TMP/$1.json"; }

echo "## berth vs anchors, $(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores"
echo
row "what" "berth" "docker" "berth / docker"
row "---" "---" "---" "---"

cmds=("$B run --rm $IMG true")
[ $HAVE_DOCKER = 1 ] && cmds+=("$D run --rm $IMG true")
hf runrm "${cmds[@]}" >/dev/null
b=$(med runrm 0); d=$([ $HAVE_DOCKER = 1 ] && med runrm 1 || echo 0)
row '`run --rm IMG true` (ms, median)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"

cmds=("$B run --rm --network none $IMG true")
[ $HAVE_DOCKER = 1 ] && cmds+=("$D run --rm --network none $IMG true")
hf runrmnone "${cmds[@]}" >/dev/null
b=$(med runrmnone 0); d=$([ $HAVE_DOCKER = 1 ] && med runrmnone 1 || echo 0)
row '`run --rm --network none IMG true` (ms)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"

# idle daemon RSS
sleep 1
b=$(rss_kb $BERTHD)
d=0
if [ $HAVE_DOCKER = 1 ]; then
  dp=$(cat /run/berth-bench-dockerd.pid); d=$(rss_kb "$dp")
  for c in $(pgrep -P "$dp" containerd || true); do d=$((d + $(rss_kb "$c"))); done
fi
row "idle daemon RSS (MB)" "$(awk -v k="$b" 'BEGIN{printf "%.1f", k/1024}')" "$(awk -v k="$d" 'BEGIN{printf "%.1f", k/1024}')" "$(ratio "$b" "$d")"

# 50 x run -d in sequence
t0=$(date +%s%N); for i in $(seq 50); do $B run -d $IMG sleep 1000 >/dev/null; done; t1=$(date +%s%N)
b=$(awk -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", (z-a)/50/1e6}')
d=0
if [ $HAVE_DOCKER = 1 ]; then
  t0=$(date +%s%N); for i in $(seq 50); do $D run -d $IMG sleep 1000 >/dev/null; done; t1=$(date +%s%N)
  d=$(awk -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", (z-a)/50/1e6}')
fi
row '50 × `run -d`, per container (ms)' "$b" "$d" "$(ratio "$b" "$d")"

# shim RSS with 50 running containers: average per monitor
b=0; n=0
for p in $(pgrep -f "berth shim --id"); do b=$((b + $(rss_kb "$p"))); n=$((n + 1)); done
b=$(awk -v k="$b" -v n="$n" 'BEGIN{ if (n>0) printf "%.2f", k/n/1024; else print 0}')
d=0
if [ $HAVE_DOCKER = 1 ]; then
  dt=0; dn=0
  for p in $(pgrep -f containerd-shim); do dt=$((dt + $(rss_kb "$p"))); dn=$((dn + 1)); done
  d=$(awk -v k="$dt" -v n="$dn" 'BEGIN{ if (n>0) printf "%.2f", k/n/1024; else print 0}')
fi
row "per-container monitor RSS (MB)" "$b" "$d" "$(ratio "$b" "$d")"

# stats --no-stream on one container
bc=$($B ps -q | head -1)
cmds=("$B stats --no-stream $bc")
if [ $HAVE_DOCKER = 1 ]; then dc=$($D ps -q | head -1); cmds+=("$D stats --no-stream $dc"); fi
hf stats "${cmds[@]}" >/dev/null
b=$(med stats 0); d=$([ $HAVE_DOCKER = 1 ] && med stats 1 || echo 0)
row '`stats --no-stream` (ms)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"

cmds=("$B ps")
[ $HAVE_DOCKER = 1 ] && cmds+=("$D ps")
hf ps "${cmds[@]}" >/dev/null
b=$(med ps 0); d=$([ $HAVE_DOCKER = 1 ] && med ps 1 || echo 0)
row '`ps` with 50 containers (ms)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"
