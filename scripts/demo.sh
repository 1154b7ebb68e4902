#!/usr/bin/env bash
# berth's main job, end to end, without internet: build berth, start the daemon, make an image
# from the machine's busybox-static, run a container that prints something. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ]; then
  echo "installing busybox-static (the demo image is made from it)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

echo "== build (release)"
cargo build --release -q -p berth
scripts/build-init.sh
BERTH=$PWD/target/release/berth
SOCK=/run/berth/berth.sock

if ! "$BERTH" version >/dev/null 2>&1; then
  echo "== start the daemon (log: /var/log/berth-demo.log)"
  mkdir -p /run/berth
  setsid "$BERTH" daemon >/var/log/berth-demo.log 2>&1 < /dev/null &
  for _ in $(seq 100); do [ -S "$SOCK" ] && "$BERTH" version >/dev/null 2>&1 && break; sleep 0.05; done
fi
"$BERTH" version

echo "== make an image from /bin/busybox and import it as busybox:demo"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root"
cp /bin/busybox "$work/rootfs/bin/busybox"
for app in $(/bin/busybox --list); do
  [ "$app" = busybox ] || ln -sf busybox "$work/rootfs/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$BERTH" import "$work/busybox.tar" busybox:demo

echo "== run a container"
"$BERTH" run --rm busybox:demo sh -c 'echo "hello from berth: pid $$ in $(hostname), $(ls /proc | grep -c "^[0-9]") process(es) visible"'

echo
echo "the daemon keeps running: try '$BERTH ps -a', 'DOCKER_HOST=unix://$SOCK docker ps';"
echo "stop it with: kill \$(cat /run/berth/berth.pid)"
