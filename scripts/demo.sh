#!/usr/bin/env bash
# Sets up the machine, starts the engine, makes a first image from busybox-static
# and runs a first container through the unmodified docker CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

SOCK=${DOCKYARD_SOCK:-/var/run/dockyard.sock}
LOG=${DOCKYARD_LOG:-/var/log/dockyard-engine.log}
export DOCKER_HOST=unix://$SOCK

if ! docker version >/dev/null 2>&1; then
  dockyard engine -H "unix://$SOCK" >"$LOG" 2>&1 &
  echo "dockyard engine started (pid $!), log: $LOG"
  for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! docker image inspect busybox:latest >/dev/null 2>&1; then
  tar=$(mktemp --suffix=.tar)
  python3 -c "import sys; from dockyard.testing.busybox import make_busybox_rootfs_tar as m; m(sys.argv[1])" "$tar"
  docker import "$tar" busybox:latest
  rm -f "$tar"
fi

docker run --rm busybox:latest sh -c 'echo "hello from a dockyard container: $(hostname), $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
echo
echo "The engine keeps running: DOCKER_HOST=$DOCKER_HOST docker ps"
