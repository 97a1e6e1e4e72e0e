#!/usr/bin/env bash
# Installs everything dockyard needs on a fresh Debian 12 machine: system packages
# (runtime, monitor, networking, test clients) and the Python package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc                # OCI runtime (crun fails on hybrid cgroups)
  conmon              # per-container monitor
  busybox-static      # base image for the demo and tests
  iptables            # NAT and forwarding for the bridge network (iptables and ip6tables)
  nftables            # nft: drop the empty nf_tables tables iptables-nft made, so the host ends as it began
  iproute2 util-linux # ip, nsenter, unshare
  tini                # --init
  skopeo              # registry tests: a real client
  docker-registry     # registry benchmark yardstick (CNCF Distribution)
  haproxy             # registry fleet tests and bench: a load balancer in front of replicas
  apache2-utils       # htpasswd for registry auth tests
  tmux bsdutils       # TTY tests (tmux, script)
  procps              # docker top compares with ps
  zstd                # zstd-compressed layers
  openssl curl        # TLS test certificates; scripts/api-fuzz.sh
  gcc libc6-dev       # confinement tests build a static seccomp probe
  docker-compose      # compose tests: docker-compose 1.29, a real client (on Debian's python3-docker)
  systemd             # systemd-socket-activate: the fd:// (socket activation) tests; PID 1 stays as it is
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
  # The docker CLI is expected on these machines. Debian's docker.io is the fallback for its
  # client; policy-rc.d keeps apt from starting its daemon, which dockyard never uses.
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io || true
  systemctl disable docker.service docker.socket containerd.service >/dev/null 2>&1 || true
  [ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# Node.js test clients (dockerode), pinned by tests/node/package-lock.json, installed there only.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
fi
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
