#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for dmdr: installs the Debian packages the build needs
# (only those missing), then configures and compiles ./build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc meson ninja-build pkg-config libopenblas-openmp-dev libpng-dev zlib1g-dev
          check libcjson-dev libinih-dev dataset-fashion-mnist libdnnl-dev libopenmpi-dev
          openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
meson compile -C build >/dev/null
echo "setup: built $(pwd)/build"
