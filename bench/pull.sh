#!/usr/bin/env bash
# bench/pull.sh — pull of a ~50 MB multi-layer image from a loopback registry, side by side:
#   berth (crates/berth-image, `examples/pull`: store open + pull + unpack into snapshots)
#   docker pull (Debian's dockerd, started here on its own socket, no bridge/iptables)
#   skopeo copy (download + verify into an OCI layout; no unpack) where installed
# The image: 4 layers of host files (/usr/lib/x86_64-linux-gnu, /usr/share; files <= 4 MiB,
# sorted, so the same machine gives the same image), gzip, Docker schema2.
# Every run starts from an empty store (docker: `rmi` in --prepare, layers deleted).
# Usage: bench/pull.sh [RUNS]      (needs root, docker-registry, hyperfine; dockerd optional)
set -euo pipefail
export PATH=/usr/sbin:/sbin:$PATH
RUNS=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TMP=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  # dockerd leaves overlay mounts of its data root only while running; it is stopped above
  rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cd "$ROOT"
cargo build --release -q -p berth-image --examples
PULL=$ROOT/target/release/examples/pull
FIXTURE=$ROOT/target/release/examples/bench_fixture

# a real docker-registry on a free loopback port, stopped by PID at exit
PORT=$(free_port)
REGISTRY=127.0.0.1:$PORT
cat > "$BENCH_TMP/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $BENCH_TMP/registry
http:
  addr: $REGISTRY
YML
docker-registry serve "$BENCH_TMP/registry.yml" >"$BENCH_TMP/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://$REGISTRY/v2/" >/dev/null && break; sleep 0.05; done
"$FIXTURE" "$REGISTRY" bench:latest --layers 4 --layer-mb 24 --max-file-kb 4096 \
  --source /usr/lib/x86_64-linux-gnu --source /usr/share | tee "$BENCH_TMP/fixture.txt"
REF=$REGISTRY/bench:latest

CMDS=()
NAMES=()
CMDS+=("$PULL $REF --root $BENCH_TMP/berth --quiet"); NAMES+=(berth)
PREPARE=("rm -rf $BENCH_TMP/berth")

if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  DSOCK=$BENCH_TMP/docker.sock
  setsid dockerd --host "unix://$DSOCK" --pidfile "$BENCH_TMP/dockerd.pid" --exec-root "$BENCH_TMP/dexec" \
    --data-root "$BENCH_TMP/ddata" --storage-driver overlay2 --bridge none --iptables=false --ip6tables=false \
    --log-level error >"$BENCH_TMP/dockerd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do docker -H "unix://$DSOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
  if docker -H "unix://$DSOCK" version >/dev/null 2>&1; then
    CMDS+=("docker -H unix://$DSOCK pull -q $REF"); NAMES+=(docker)
    PREPARE+=("docker -H unix://$DSOCK rmi -f $REF >/dev/null 2>&1 || true")
  else
    echo "dockerd did not start (see $BENCH_TMP/dockerd.log); skipping docker" >&2
  fi
else
  echo "dockerd not installed (apt-get install docker.io); skipping docker" >&2
fi

if command -v skopeo >/dev/null; then
  CMDS+=("skopeo copy -q --src-tls-verify=false docker://$REF oci:$BENCH_TMP/skopeo:latest"); NAMES+=(skopeo)
  PREPARE+=("rm -rf $BENCH_TMP/skopeo")
fi

ARGS=()
for i in "${!CMDS[@]}"; do ARGS+=(--prepare "${PREPARE[$i]}" -n "${NAMES[$i]}" "${CMDS[$i]}"); done
hyperfine --warmup 1 --runs "$RUNS" --export-json "$BENCH_TMP/pull.json" "${ARGS[@]}"

# "already up to date": the image is present, the pull only asks the registry (HEAD)
"$PULL" "$REF" --root "$BENCH_TMP/berth-warm" --quiet
UP=(-n berth "$PULL $REF --root $BENCH_TMP/berth-warm --quiet")
if [ -n "${DSOCK:-}" ] && docker -H "unix://$DSOCK" version >/dev/null 2>&1; then
  docker -H "unix://$DSOCK" pull -q "$REF" >/dev/null
  UP+=(-n docker "docker -H unix://$DSOCK pull -q $REF")
fi
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$BENCH_TMP/uptodate.json" "${UP[@]}"

python3 - "$BENCH_TMP/pull.json" "$BENCH_TMP/uptodate.json" <<'PY'
import json, sys
up = {x["command"]: x for x in json.load(open(sys.argv[2]))["results"]}
if "docker" in up:
    print(f"\nup to date: berth {up['berth']['median']*1000:.0f} ms, docker {up['docker']['median']*1000:.0f} ms, "
          f"berth / docker: {up['berth']['median'] / up['docker']['median']:.2f}x")
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print("\nmedians (cold pull):")
for n, x in r.items():
    print(f"  {n:8s} {x['median']*1000:8.0f} ms  (min {x['min']*1000:.0f}, max {x['max']*1000:.0f})")
b = r["berth"]["median"]
for n, x in r.items():
    if n != "berth":
        print(f"  berth / {n}: {b / x['median']:.2f}x")
PY
