#!/usr/bin/env bash
# Fuzz the engine's API with schemathesis against the Engine API v1.50 spec, looking for 5xx.
# Starts a private engine (temp socket, data root, bridge) with a busybox image; operations that
# would run containers or reach outside (start, exec, build, push, pull, swarm…) are left out.
# Usage: scripts/api-fuzz.sh [SECONDS]   (default 240); the report goes to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${SPEC:-../shared/reference/engine-api/engine-api-v1.50.yaml}
SECS=${1:-240}
python3 -m pip install -q --disable-pip-version-check schemathesis
tmp=$(mktemp -d /tmp/dyk-fuzz-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m dockyard.cli engine -H "tcp://127.0.0.1:$port" -H "unix://$tmp/s.sock" \
  --data-root "$tmp/data" --exec-root "$tmp/run" --bridge "dyf$RANDOM" --bip "10.201.$((RANDOM % 250)).1/24" \
  >"$tmp/engine.log" 2>&1 &
engine=$!
cleanup() {
  DOCKER_HOST="unix://$tmp/s.sock" docker rm -f $(DOCKER_HOST="unix://$tmp/s.sock" docker ps -aq) >/dev/null 2>&1 || true
  kill "$engine" 2>/dev/null || true
  wait "$engine" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_ping" >/dev/null && break; sleep 0.1; done
python3 -c "import sys; from dockyard.testing.busybox import make_busybox_rootfs_tar as m; m(sys.argv[1])" "$tmp/bb.tar"
DOCKER_HOST="unix://$tmp/s.sock" docker import "$tmp/bb.tar" busybox:latest >/dev/null
mkdir -p bench/results
out=bench/results/api-fuzz-$(date +%Y%m%d-%H%M%S).txt
schemathesis run "$SPEC" -u "http://127.0.0.1:$port/v1.50" --checks not_a_server_error \
  --phases examples,coverage,fuzzing --max-time "$SECS" -w 2 --max-failures 500 \
  --exclude-operation-id-regex 'ContainerStart|ContainerRestart|ContainerUnpause|ExecStart|ImageBuild|BuildPrune|Swarm|Plugin|Service|Node|Secret|Config|Session|Distribution|ImagePush|ImageCreate|SystemAuth|SystemEvents|ContainerAttach|ContainerLogs|ContainerStats|ImageGet|ContainerWait|ImageLoad|PutContainerArchive|ContainerExport|ContainerArchive' \
  >"$out" 2>&1 || true
tail -25 "$out"
echo "report: $out"
