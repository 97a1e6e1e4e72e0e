#!/usr/bin/env bash
# Fuzz the engine's API with schemathesis against the Engine API v1.50 spec (bench/api_fuzz/run.py).
# Each mode starts a private engine (temp socket, data root, bridge) with real objects (busybox image
# and a tag, created/running/exited containers, an exec, a network, a volume) whose ids schemathesis
# is given, so requests reach the handlers' logic:
#   robust       ~40 operations incl. stateful links, looking for 5xx (start/restart/unpause/exec
#                start/attach/build/push/pull/swarm stay out: they would run arbitrary commands)
#   destructive  DELETE and prune operations, looking for 5xx
#   conform      the read operations: response schema, content type and status codes, against the
#                spec relaxed only where dockerd departs from it (dockyard/testing/apispec.py)
# Usage: scripts/api-fuzz.sh [SECONDS] [MODES]   (default 240 per mode; "robust destructive conform")
# Reports: bench/results/api-fuzz-<mode>-<ts>.txt, the engine's log next to each.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-240}
MODES=${2:-robust destructive conform}
python3 -m pip install -q --disable-pip-version-check schemathesis jsonschema
rc=0
for mode in $MODES; do
  echo "=== $mode"
  python3 bench/api_fuzz/run.py "$mode" --secs "$SECS" | tail -22 || rc=1
done
exit $rc
