#!/usr/bin/env bash
# One installer for every place fabric runs: `make setup`, CI (.ci/run via `make test`) and the
# Vagrant VM. Installs the OS packages the emulator needs, creates a venv that can see Debian's
# Mininet (--system-site-packages), and installs fabric with its test extras into it.
# Idempotent: a second run finds everything in place, installs nothing and takes seconds.
#
# Usage: sudo vagrant/provision.sh [REPO_DIR]      (REPO_DIR defaults to this script's parent)
set -euo pipefail

repo=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
venv="$repo/.venv"
# mininet brings mnexec; python3-venv/pip build the venv from the system Python that sees Mininet;
# gcc + libc6-dev compile the traffic agents (fabric/emu/sender.c, receiver.c); g++ the packet
# simulator's model (fabric/sim/capi.cpp) against the ns3 wheel.
packages=(mininet iproute2 nftables ethtool iperf3 tcpdump python3 python3-venv python3-pip procps kmod gcc libc6-dev
          g++)
# Headless Chromium renders the HTML report in tests (screenshot check). Debian ships it as a
# real package; Ubuntu only as a snap wrapper, so there the screenshot test skips instead.
if grep -q '^ID=debian' /etc/os-release 2>/dev/null; then
  packages+=(chromium)
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "provision.sh: run as root (sudo make setup); it installs OS packages" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No recommends: mininet recommends Open vSwitch, which fabric does not use.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "provision: OS packages present"
fi

# The venv must use the system interpreter: Debian's Mininet lives in its dist-packages.
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mininet.net" 2>/dev/null; then
  echo "provision: creating $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

# Reinstall only when the package metadata changed since the last install.
stamp="$venv/.fabric-installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ] || ! "$venv/bin/python" -c "import fabric" 2>/dev/null; then
  echo "provision: installing fabric into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$repo[test]"
  touch "$stamp"
else
  echo "provision: fabric already installed in $venv"
fi
"$venv/bin/fabric" --help >/dev/null
# Build the compiled traffic agents now (cached by source hash; a no-op when already built).
agents=$("$venv/bin/python" -m fabric.emu.native)  # a bare assignment: set -e stops on a failed build
echo "provision: traffic agents at" $agents
# And the packet simulator's model (~10 s the first time; cached by source and ns3 wheel).
model=$("$venv/bin/python" -m fabric.sim.native)
echo "provision: simulator model at $model"
echo "provision: ready — try: sudo $venv/bin/fabric doctor"
