#!/usr/bin/env bash
# Builds (once, then reuses) a Debian 13 "trixie" root filesystem with the libraries triptych's
# binaries load at run time, and prints its path.
#
# Why: the seccomp policies are allowlists, and a newer C library or driver that starts making a
# new system call breaks them. Debian 12 (glibc 2.36, Mesa 22.3) is where the project is built;
# Debian 13 (glibc 2.41, Mesa 25) is the newer userspace the same host-built binaries are tested
# under, by tests/userspace/run-tests.sh.
#
# Usage:
#   tests/userspace/build-rootfs.sh            # prints the root filesystem's path
#
# Knobs (environment):
#   TRIPTYCH_ROOTFS_CACHE   where root filesystems are kept
#                           (default: ${XDG_CACHE_HOME:-$HOME/.cache}/triptych/rootfs)
#   TRIPTYCH_ROOTFS_MIRROR  the Debian mirror (default: http://deb.debian.org/debian)
#
# The root filesystem is rebuilt when the package list below changes (its name carries a hash of
# that list), and never half-built: debootstrap runs into a scratch directory that is renamed
# only once it succeeded. Needs root (debootstrap); installs debootstrap when missing.
set -euo pipefail

readonly SUITE=trixie
# What the three processes load: glibc and libgcc come with the base system; the GPU process
# needs EGL (glvnd's libEGL with Mesa's vendor library), GBM and the DRI drivers (llvmpipe).
readonly PACKAGES="libegl1,libegl-mesa0,libgbm1,libgl1-mesa-dri,libgles2"

say() { printf '[rootfs] %s\n' "$*" >&2; }
die() {
    printf '[rootfs] error: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap and chroot)"
if ! command -v debootstrap >/dev/null 2>&1; then
    say "apt-get install -y debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
        die "could not install debootstrap"
fi

cache="${TRIPTYCH_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/triptych/rootfs}"
mirror="${TRIPTYCH_ROOTFS_MIRROR:-http://deb.debian.org/debian}"
key=$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
root="$cache/debian13-$key"

if [[ -e $root/.complete ]]; then
    printf '%s\n' "$root"
    exit 0
fi

mkdir -p "$cache"
scratch="$cache/.building-$key.$$"
trap 'rm -rf -- "$scratch"' EXIT
say "debootstrap $SUITE into $scratch (a few minutes, once)"
t0=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$scratch" "$mirror" \
    >"$scratch.log" 2>&1 || {
    tail -n 30 "$scratch.log" >&2
    die "debootstrap $SUITE from $mirror failed (log: $scratch.log)"
}
rm -f -- "$scratch.log"
# The package cache is not needed to run anything.
rm -rf -- "$scratch/var/cache/apt/archives/"*.deb
{
    printf 'suite: %s\npackages: %s\n' "$SUITE" "$PACKAGES"
    printf 'glibc: %s\n' "$(chroot "$scratch" dpkg-query -W -f='${Version}' libc6)"
    printf 'mesa: %s\n' "$(chroot "$scratch" dpkg-query -W -f='${Version}' libegl-mesa0)"
} >"$scratch/.complete"
rm -rf -- "$root"
mv -- "$scratch" "$root"
trap - EXIT
say "built $root in $(($(date +%s) - t0)) s: $(tr '\n' ' ' <"$root/.complete")"
printf '%s\n' "$root"
