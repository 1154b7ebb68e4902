#!/usr/bin/env bash
# berth vs Debian's dockerd (and podman where installed), side by side in one run, on the same
# busybox image pulled from a loopback registry. Prints a markdown table of medians and ratios.
#
#   bench/run.sh            (as root; needs hyperfine, docker-registry, skopeo, busybox-static;
#                            docker.io/podman are optional anchors)
#
# Measures: `run --rm IMG true` (with and without network), daemon idle RSS (right after start
# and IDLE_AFTER=10 s after the run benchmarks), shim RSS with 10 running containers, 50 x `run -d`
# in sequence, `stats --no-stream`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=${RUNS:-20}
# BERTH=/path/to/berth skips the build (a berth-shim beside it is used when its build id matches)
if [ -z "${BERTH:-}" ]; then
  cargo build --release -q -p berth -p berth-shim
  scripts/build-static-shim.sh   # the shim statically linked: less RSS per shim and zygote
  BERTH=$PWD/target/release/berth
fi
B_SOCK=$BENCH_TMP/berth.sock
B_ROOT=/var/lib/berth-bench-$$
B_NAME=bb$(($$ % 100000))   # bridge, nft table, veth prefix, cgroup parent: unique on a shared kernel
B_EXEC=/run/$B_NAME          # short: shim socket paths under it must fit 107 bytes
cleanup() {
  set +e
  "$BERTH" -H "unix://$B_SOCK" rm -f $("$BERTH" -H "unix://$B_SOCK" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  stop_dockerd
  cleanup_common
  # the daemon keeps its bridge and nft table across restarts (as dockerd does): ours, unique
  ip link del "$B_NAME" 2>/dev/null || true
  nft delete table ip "$B_NAME" 2>/dev/null || true
  for d in /sys/fs/cgroup/*/"$B_NAME" /sys/fs/cgroup/unified/"$B_NAME"; do [ -d "$d" ] && rmdir "$d"; done
  umount "$B_EXEC" 2>/dev/null || true   # the daemon mounts a tmpfs there when /run is not one
  rm -rf "$B_ROOT" "$B_EXEC"
}
trap cleanup EXIT

start_registry
IMG=$REGISTRY/busybox:latest

setsid "$BERTH" daemon --data-root "$B_ROOT" --exec-root "$B_EXEC" -H "unix://$B_SOCK" \
  --cgroup-parent "/$B_NAME" --bridge "$B_NAME" --nft-table "$B_NAME" --veth-prefix "$B_NAME" \
  --fixed-cidr "10.$((200 + RANDOM % 50)).$((RANDOM % 250)).0/24" >"$BENCH_TMP/berthd.log" 2>&1 < /dev/null &
BERTHD=$!; PIDS+=($BERTHD)
for _ in $(seq 300); do "$BERTH" -H "unix://$B_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
"$BERTH" -H "unix://$B_SOCK" version >/dev/null || { echo "berth daemon did not start:" >&2; cat "$BENCH_TMP/berthd.log" >&2; exit 1; }
B="$BERTH -H unix://$B_SOCK"

# Daemon memory: RSS of the daemon and every process it started that is still its child
# (berth: a shim zygote; dockerd: containerd), in kB. Measured with no container running.
tree_rss_kb() {
  local t; t=$(rss_kb "$1")
  for c in $(pgrep -P "$1" || true); do t=$((t + $(tree_rss_kb "$c"))); done
  echo "$t"
}
sleep 1; B_RSS_START=$(tree_rss_kb "$BERTHD")
$B pull -q "$IMG" >/dev/null

HAVE_DOCKER=0 D_RSS_START=0
if start_dockerd; then
  HAVE_DOCKER=1; D="docker -H unix://$DOCKER_SOCK"
  sleep 1; D_RSS_START=$(tree_rss_kb "$DOCKERD_PID")
  $D pull -q "$IMG" >/dev/null
fi

hf() { # name, commands...
  local name=$1; shift
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_TMP/$name.json" "$@" >/dev/null 2>&1
  jq -r '.results[] | "\(.command)\t\(.median*1000)"' "$BENCH_TMP/$name.json"
}
row() { printf '| %s | %s | %s | %s |\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
med() { jq -r ".results[$2].median*1000" "$BENCH_TMP/$1.json"; }

echo "## berth vs anchors, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) cores, load $(cut -d" " -f1-3 /proc/loadavg), $RUNS runs"
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

# idle daemon RSS: right after start (above, before any pull) and IDLE_AFTER s after the run
# benchmarks (the daemon has worked and is idle again; berth trims its heap 3 s after the last
# request and its blocking threads exit after 2 s)
IDLE_AFTER=${IDLE_AFTER:-10}
sleep "$IDLE_AFTER"
b=$(tree_rss_kb "$BERTHD")
d=0; [ $HAVE_DOCKER = 1 ] && d=$(tree_rss_kb "$DOCKERD_PID")
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
row "idle daemon RSS right after start (MB, with its helper processes)" "$(mb "$B_RSS_START")" "$(mb "$D_RSS_START")" "$(ratio "$B_RSS_START" "$D_RSS_START")"
row "idle daemon RSS ${IDLE_AFTER} s after the run benchmarks (MB)" "$(mb "$b")" "$(mb "$d")" "$(ratio "$b" "$d")"

# 50 x run -d in sequence
t0=$(date +%s%N); for i in $(seq 50); do $B run -d $IMG sleep 1000 >/dev/null; done; t1=$(date +%s%N)
b=$(awk -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", (z-a)/50/1e6}')
d=0
if [ $HAVE_DOCKER = 1 ]; then
  t0=$(date +%s%N); for i in $(seq 50); do $D run -d $IMG sleep 1000 >/dev/null; done; t1=$(date +%s%N)
  d=$(awk -v a="$t0" -v z="$t1" 'BEGIN{printf "%.1f", (z-a)/50/1e6}')
fi
row '50 × `run -d`, per container (ms)' "$b" "$d" "$(ratio "$b" "$d")"

# monitor memory with 50 running containers: average per monitor process, RSS and PSS (only our
# daemon's shims: exec'd ones carry a --state-dir under $B_EXEC, forked ones are children of the
# daemon's shim zygote, whose socket is under $B_EXEC; docker's talk to its own containerd socket)
avg() { awk -v k="$1" -v n="$2" 'BEGIN{ if (n>0) printf "%.2f", k/n/1024; else print 0}'; }
b_shims() {
  pgrep -f "shim --id .*--state-dir $B_EXEC/" || true
  for z in $(pgrep -P "$BERTHD" -f "shim zygote --socket $B_EXEC/" || true); do pgrep -P "$z" || true; done
}
# Measured 2 s after the last start whether or not docker ran in between: berth's shims drop the
# page mappings of their start-up code 1 s after their last request (release_startup_pages).
sleep 2
br=0; bp=0; n=0
for p in $(b_shims); do
  br=$((br + $(rss_kb "$p"))); bp=$((bp + $(pss_kb "$p"))); n=$((n + 1))
done
bexe=$(basename "$(readlink "/proc/$(b_shims | head -1)/exe" 2>/dev/null || echo none)")
dr=0; dp=0; dn=0
if [ $HAVE_DOCKER = 1 ]; then
  for p in $(pgrep -f "containerd-shim.*$DOCKER_EXEC/"); do
    dr=$((dr + $(rss_kb "$p"))); dp=$((dp + $(pss_kb "$p"))); dn=$((dn + 1))
  done
fi
row "per-container monitor RSS (MB; berth: $n × $bexe, docker: $dn × containerd-shim)" "$(avg $br $n)" "$(avg $dr $dn)" "$(ratio "$(avg $br $n)" "$(avg $dr $dn)")"
row "per-container monitor PSS (MB)" "$(avg $bp $n)" "$(avg $dp $dn)" "$(ratio "$(avg $bp $n)" "$(avg $dp $dn)")"

# stats --no-stream on one container
bc=$($B ps -q); bc=${bc%%$'\n'*}   # not `| head -1`: berth ps panics on EPIPE
cmds=("$B stats --no-stream $bc")
if [ $HAVE_DOCKER = 1 ]; then dc=$($D ps -q); dc=${dc%%$'\n'*}; cmds+=("$D stats --no-stream $dc"); fi
hf stats "${cmds[@]}" >/dev/null
b=$(med stats 0); d=$([ $HAVE_DOCKER = 1 ] && med stats 1 || echo 0)
row '`stats --no-stream` (ms)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"

cmds=("$B ps")
[ $HAVE_DOCKER = 1 ] && cmds+=("$D ps")
hf ps "${cmds[@]}" >/dev/null
b=$(med ps 0); d=$([ $HAVE_DOCKER = 1 ] && med ps 1 || echo 0)
row '`ps` with 50 containers (ms)' "$(printf %.1f "$b")" "$(printf %.1f "$d")" "$(ratio "$b" "$d")"

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
