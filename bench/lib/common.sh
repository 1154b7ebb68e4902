# Shared helpers for the benchmarks: a loopback registry with a busybox image, anchors started by hand.
# Sourced by bench/*.sh. Everything started here is stopped by PID in cleanup; nothing is flushed.

set -euo pipefail
BENCH_TMP=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$BENCH_TMP"' EXIT   # until the script sets its own cleanup (e.g. a failed build)
PIDS=()
cleanup_common() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$BENCH_TMP"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# make_oci_layout DIR ROOTFS TAG: a one-layer OCI image layout of ROOTFS (gzip layer).
make_oci_layout() {
  local dir=$1 rootfs=$2 tag=$3
  mkdir -p "$dir/blobs/sha256"
  tar -C "$rootfs" --numeric-owner -cf "$dir/layer.tar" .
  local diff; diff=$(sha256 "$dir/layer.tar")
  gzip -n -c "$dir/layer.tar" > "$dir/layer.tgz"
  local ld; ld=$(sha256 "$dir/layer.tgz"); local ls; ls=$(stat -c %s "$dir/layer.tgz")
  mv "$dir/layer.tgz" "$dir/blobs/sha256/$ld"; rm "$dir/layer.tar"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"berth bench"}]}' "$diff" > "$dir/config.json"
  local cd; cd=$(sha256 "$dir/config.json"); local cs; cs=$(stat -c %s "$dir/config.json")
  mv "$dir/config.json" "$dir/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" > "$dir/manifest.json"
  local md; md=$(sha256 "$dir/manifest.json"); local ms; ms=$(stat -c %s "$dir/manifest.json")
  mv "$dir/manifest.json" "$dir/blobs/sha256/$md"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$tag" > "$dir/index.json"
}

busybox_rootfs() {
  local r=$1
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/proc" "$r/sys" "$r/dev"
  cp /bin/busybox "$r/bin/busybox"
  for app in $(/bin/busybox --list); do [ "$app" = busybox ] || ln -sf busybox "$r/bin/$app"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
}

# start_registry: a real docker-registry on 127.0.0.1 with busybox:latest pushed; sets REGISTRY.
start_registry() {
  local port; port=$(free_port)
  mkdir -p "$BENCH_TMP/registry"
  cat > "$BENCH_TMP/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $BENCH_TMP/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
YML
  docker-registry serve "$BENCH_TMP/registry.yml" >"$BENCH_TMP/registry.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
  REGISTRY=127.0.0.1:$port
  busybox_rootfs "$BENCH_TMP/rootfs"
  make_oci_layout "$BENCH_TMP/oci" "$BENCH_TMP/rootfs" latest
  skopeo copy -q --dest-tls-verify=false "oci:$BENCH_TMP/oci:latest" "docker://$REGISTRY/busybox:latest" --format v2s2
}

# start_dockerd: Debian's dockerd by hand on its own socket and dirs (no systemd here); sets
# DOCKER_SOCK and DOCKERD_PID. Its bridge gets a random 10.x/24 (the default pools may all be
# routed on a shared kernel). stop_dockerd undoes what it leaves behind.
DOCKERD_PID=
start_dockerd() {
  command -v dockerd >/dev/null || return 1
  DOCKER_SOCK=/run/berth-bench-docker-$$.sock
  DOCKER_EXEC=/run/berth-bench-docker-$$
  DOCKER_DATA=/var/lib/berth-bench-docker-$$
  DOCKER_NET=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
  DOCKER0_BEFORE=0; ip link show docker0 >/dev/null 2>&1 && DOCKER0_BEFORE=1
  DOCKER_CG_BEFORE=0; [ -d /sys/fs/cgroup/memory/docker ] || [ -d /sys/fs/cgroup/docker ] && DOCKER_CG_BEFORE=1
  DOCKER_CHAINS_BEFORE=$( (iptables -S; iptables -t nat -S) 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/ {print $2}' | sort -u | tr '\n' ' ')
  # dockerd's exec root on a tmpfs, as /run is on most distributions and as berth's daemon
  # makes its own exec root when /run is a disk filesystem (here it is ext4): same footing.
  mkdir -p "$DOCKER_EXEC" && mount -t tmpfs -o mode=0711 berth-bench-docker "$DOCKER_EXEC"
  setsid /usr/sbin/dockerd --host "unix://$DOCKER_SOCK" --pidfile "$DOCKER_EXEC.pid" \
    --exec-root "$DOCKER_EXEC" --data-root "$DOCKER_DATA" --bip "$DOCKER_NET.1/24" \
    --storage-driver overlay2 --log-level warn >"$BENCH_TMP/dockerd.log" 2>&1 < /dev/null &
  DOCKERD_PID=$!
  for _ in $(seq 200); do docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "dockerd did not start; see $BENCH_TMP/dockerd.log" >&2; return 1
}

# stop_dockerd: remove its containers, stop it by PID, then remove what it leaves: its dirs, its
# docker0 (only if there was none before) and the DOCKER* iptables chains that did not exist before.
stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  set +e   # best effort: a grep that finds nothing must not end the cleanup (pipefail)
  local ids; ids=$(docker -H "unix://$DOCKER_SOCK" ps -aq 2>/dev/null || true)
  [ -z "$ids" ] || docker -H "unix://$DOCKER_SOCK" rm -f $ids >/dev/null 2>&1 || true
  kill "$DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
  DOCKERD_PID=
  if [ "$DOCKER0_BEFORE" = 0 ] && ip link show docker0 >/dev/null 2>&1; then ip link del docker0 || true; fi
  # dockerd's cgroup parent, /docker, when it made it (empty once its containers are gone)
  if [ "$DOCKER_CG_BEFORE" = 0 ]; then
    for d in /sys/fs/cgroup/*/docker /sys/fs/cgroup/docker; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  fi
  local t c r
  for t in filter nat; do
    for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/ {print $2}'); do
      case " $DOCKER_CHAINS_BEFORE " in *" $c "*) continue ;; esac
      # rules elsewhere that jump to it, then the chain itself
      iptables -t $t -S | grep -E -- "-j $c( |\$)" | grep -v "^-A $c " | sed 's/^-A /-D /' |
        while read -r r; do eval "iptables -t $t $r" || true; done
      iptables -t $t -F "$c" 2>/dev/null || true
    done
    for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/ {print $2}'); do
      case " $DOCKER_CHAINS_BEFORE " in *" $c "*) continue ;; esac
      iptables -t $t -X "$c" 2>/dev/null || true
    done
    # rules in the built-in chains about its bridge or its subnet (FORWARD accepts, MASQUERADE)
    if [ "$DOCKER0_BEFORE" = 0 ] && [ -n "$DOCKER_NET" ]; then
      iptables -t $t -S | grep -E -- "^-A [A-Z]+ .*( docker0 | ${DOCKER_NET//./\\.}\.0/24 )" | sed 's/^-A /-D /' |
        while read -r r; do eval "iptables -t $t $r" || true; done
    fi
  done
  grep -o " $DOCKER_DATA[^ ]*\| $DOCKER_EXEC[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
  umount -l "$DOCKER_EXEC" 2>/dev/null || true
  rm -rf "$DOCKER_DATA" "$DOCKER_EXEC" "$DOCKER_EXEC.pid" "$DOCKER_SOCK"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
