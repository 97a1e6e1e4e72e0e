#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
exec python3 -m pytest -q -ra "$@"
