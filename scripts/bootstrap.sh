#!/usr/bin/env bash
# Installs what pycarp, its demo and its tests need on a Debian machine (as root):
# Debian's iproute2, nftables (the lab's SmartOS NIC filters), ucarp (the reference
# peer), ping, xmllint and systemd-analyze (to check generated service files),
# tcpdump (tests that watch the wire), faketime (wall-clock steps under a daemon),
# openssl (a self-signed certificate for the https check tests), tshark (decodes
# what pycarp sends, as a third party would), keepalived (the VRRPv3 peer),
# stress-ng (the benchmarks' CPU and memory hogs), man-db (checks the man pages),
# pipx (installs the built wheel as an operator would),
# ifupdown (ifup and ifdown run the ifupdown hooks' end-to-end tests),
# then a virtualenv in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 iputils-ping ucarp procps nftables libxml2-utils systemd tcpdump faketime openssl
          tshark keepalived stress-ng man-db pipx ifupdown)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,lab]'
