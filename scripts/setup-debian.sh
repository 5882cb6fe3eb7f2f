#!/usr/bin/env bash
# Installs what triptych needs on Debian: Mesa's EGL and software GL (llvmpipe), and GBM.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
pkgs=(libegl1 libegl-mesa0 libgbm1 libgl1-mesa-dri)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
