#!/usr/bin/env bash
# Installs everything dockyard needs on a fresh Debian 12 machine: system packages
# (runtime, monitor, networking, test clients) and the Python package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc                # OCI runtime (crun fails on hybrid cgroups)
  conmon              # per-container monitor
  busybox-static      # base image for the demo and tests
  iptables            # NAT and forwarding for the bridge network
  iproute2 util-linux # ip, nsenter, unshare
  tini                # --init
  skopeo              # registry tests: a real client
  docker-registry     # registry benchmark yardstick (CNCF Distribution)
  apache2-utils       # htpasswd for registry auth tests
  tmux                # TTY tests
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v docker >/dev/null 2>&1; then
  # The docker CLI is expected on these machines; Debian's docker.io is a fallback
  # that brings its own client (its daemon is never started by us).
  apt-get install -y -q --no-install-recommends docker.io || true
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
