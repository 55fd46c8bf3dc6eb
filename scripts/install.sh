#!/usr/bin/env bash
# Installs everything understudy needs on Debian/Ubuntu and builds it (native addon + TS).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(fuse3 libfuse3-dev cmake g++ make pkg-config python3 attr util-linux iproute2 nftables)
# Applications the integration suites run on the mount (test/integration/app-*.test.ts);
# installed without recommends to keep the install short.
app_packages=(postgresql git)
missing_of() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || echo "$pkg"
  done
}
mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_apps < <(missing_of "${app_packages[@]}")
if ((${#missing[@]} + ${#missing_apps[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing Debian packages: ${missing[*]} ${missing_apps[*]};" \
      "run this script as root" >&2
    exit 1
  fi
  echo "install.sh: installing ${missing[*]} ${missing_apps[*]}"
  apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ((${#missing_apps[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing_apps[@]}" >/dev/null
  fi
fi
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "install.sh: Node.js 20 or newer is required (https://nodejs.org)" >&2
  exit 1
fi

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
npm run --silent build
echo "install.sh: built; try: sudo bin/understudy --help"
