#!/usr/bin/env bash
# Installs the Debian packages Jing needs to build and test. Idempotent; run as root (or with sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  clang libclang-rt-14-dev libomp-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  libpcre2-dev libutf8proc-dev libcurl4-openssl-dev libssl-dev
  libboost-dev libboost-system-dev libedit-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl tmux python3 python3-jinja2
  chromium
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# node and npm come with the machine image (Debian's npm conflicts with it); the server tests need them.
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
