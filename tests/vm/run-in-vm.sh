#!/usr/bin/env bash
# Run one command inside a throw-away QEMU guest that boots Debian's kernel over the host
# filesystem, with the `vgem` DRM driver loaded, and exit with that command's exit status.
#
# Why: the DMA-BUF, sync_file and DRM paths of triptych need a kernel with a DRM device. The
# build machines have none (no GPU, no /dev/dri, and a host kernel without vgem), so the tests
# that touch real kernel objects run here, against vgem ("virtual GEM", drivers/gpu/drm/vgem),
# which gives /dev/dri/card0 and /dev/dri/renderD128 with dumb buffers, PRIME export and
# driver-side fences (https://docs.kernel.org/gpu/vgem.html).
#
# Usage:
#   tests/vm/run-in-vm.sh COMMAND [ARG...]
#
# Example:
#   CARGO_TARGET_DIR=/work/target-vm cargo test -p triptych-sys --no-run   # note the binary path
#   TRIPTYCH_REQUIRE_VGEM=1 tests/vm/run-in-vm.sh /work/target-vm/debug/deps/vgem-<hash>
#
# What the guest sees:
#   - the host's root filesystem, READ-ONLY (9p). /tmp, /etc, /var, /home, /usr are writable
#     overlays whose writes are discarded at exit. Build on the host; run binaries in the guest.
#   - the current working directory, as on the host.
#   - only these host environment variables: PATH, HOME, LANG, RUST_BACKTRACE, RUST_LOG,
#     RUST_TEST_THREADS, every TRIPTYCH_* variable, and the names listed in TRIPTYCH_VM_ENV.
#   - /dev/dri/card0 and /dev/dri/renderD128 from `modprobe vgem`.
#
# Knobs (environment):
#   TRIPTYCH_VM_KERNEL   path of the kernel image to boot (default: newest /boot/vmlinuz-*
#                        whose /lib/modules/<ver> has the vgem module; installed when missing)
#   TRIPTYCH_VM_MEMORY   guest memory (default 3G)
#   TRIPTYCH_VM_CPUS     guest CPUs (default: all host CPUs)
#   TRIPTYCH_VM_RWDIRS   space-separated host directories to give the guest read-write
#   TRIPTYCH_VM_ENV      space-separated extra environment variable names to pass through
#   TRIPTYCH_VM_VERBOSE=1  show the guest kernel's console (boot messages, panics)
#   TRIPTYCH_VM_TIMEOUT  seconds before the whole VM is killed (default 1800)
#   TRIPTYCH_VM_KVM=1    use KVM instead of software emulation (default off: nested KVM fails
#                        on the build machines with "failed to set MSR 0x10a")
#   TRIPTYCH_VM_NO_INSTALL=1   never install anything; fail if a piece is missing
#
# Exit status: the command's own status. 125 means the harness itself failed (a missing piece,
# or a guest that never ran the command or died before it finished), 124 that the VM was killed
# at TRIPTYCH_VM_TIMEOUT; the message on stderr names the cause.
#
# Needs root to install packages and to read /boot/vmlinuz-* (mode 0600 on Debian). Installs,
# idempotently: qemu-system-x86, busybox-static and kmod (virtme-ng builds its initramfs for a
# modular distribution kernel from a static busybox and the host's modprobe), a Debian kernel
# image with the vgem module, and virtme-ng (pip).

set -euo pipefail

readonly HARNESS_FAILED=125
# virtme-ng's command-line flags have changed between releases; pin the one this was tested with.
readonly VIRTME_NG_VERSION="${TRIPTYCH_VM_VIRTME_NG_VERSION:-1.42}"

say() { printf '[run-in-vm] %s\n' "$*" >&2; }
die() {
    printf '[run-in-vm] error: %s\n' "$*" >&2
    exit "$HARNESS_FAILED"
}
die_timeout() {
    printf '[run-in-vm] error: %s\n' "$*" >&2
    exit 124
}

if [[ $# -eq 0 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi

may_install() {
    [[ "${TRIPTYCH_VM_NO_INSTALL:-0}" != 1 ]] || return 1
    [[ $(id -u) -eq 0 ]] || return 1
    command -v apt-get >/dev/null 2>&1
}

apt_updated=0
apt_update() {
    [[ $apt_updated -eq 0 ]] || return 0
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
}

apt_install() {
    # Installs the given packages; dies naming them when that fails.
    may_install || die "missing: $* (install, as root: apt-get install -y $*)"
    apt_update
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
        die "could not install the package(s): $*"
}

# --- 1. host tools ---------------------------------------------------------------------------

command -v qemu-system-x86_64 >/dev/null 2>&1 || apt_install qemu-system-x86
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 not found after installing qemu-system-x86"

# virtme-ng needs a *static* busybox for the initramfs of a modular kernel.
busybox_is_static() {
    local b
    for b in /usr/lib/initramfs-tools/bin/busybox /bin/busybox /usr/bin/busybox; do
        [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1 && return 0
    done
    return 1
}
busybox_is_static || apt_install busybox-static
busybox_is_static || die "no statically linked busybox after installing busybox-static"
command -v modprobe >/dev/null 2>&1 || [[ -x /sbin/modprobe ]] || apt_install kmod

# --- 2. kernel image with vgem ---------------------------------------------------------------

# Prints the newest /boot/vmlinuz-<ver> whose modules include vgem, or nothing.
find_kernel() {
    local img ver best=""
    for img in /boot/vmlinuz-*; do
        [[ -e $img ]] || continue
        ver=${img#/boot/vmlinuz-}
        compgen -G "/lib/modules/$ver/kernel/drivers/gpu/drm/vgem/vgem.ko*" >/dev/null || continue
        if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "${best#/boot/vmlinuz-}" "$ver" | sort -V | tail -n1) == "$ver" ]]; then
            best=$img
        fi
    done
    printf '%s' "$best"
}

kernel="${TRIPTYCH_VM_KERNEL:-}"
if [[ -z $kernel ]]; then
    kernel=$(find_kernel)
    if [[ -z $kernel ]]; then
        may_install || die "missing: a kernel image with vgem (install, as root: apt-get install -y linux-image-amd64)"
        apt_update
        # The generic flavour has vgem (CONFIG_DRM_VGEM=m); the cloud flavour does not.
        if apt-cache show linux-image-amd64 >/dev/null 2>&1; then
            apt_install linux-image-amd64
        else
            pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
                awk '{print $1}' | sort -V | tail -n1)
            [[ -n $pkg ]] || die "no Debian kernel image with vgem: apt offers neither linux-image-amd64 nor linux-image-6.1.0-*-amd64"
            apt_install "$pkg"
        fi
        kernel=$(find_kernel)
        [[ -n $kernel ]] || die "a kernel image was installed but no /boot/vmlinuz-<ver> has /lib/modules/<ver>/kernel/drivers/gpu/drm/vgem/vgem.ko"
    fi
fi
[[ -e $kernel ]] || die "the kernel image $kernel does not exist"
[[ -r $kernel ]] || die "cannot read the kernel image $kernel (run as root: Debian installs it mode 0600)"
kver=${kernel#/boot/vmlinuz-}
if [[ $kver != "$kernel" ]] && ! compgen -G "/lib/modules/$kver/kernel/drivers/gpu/drm/vgem/vgem.ko*" >/dev/null; then
    die "kernel $kernel has no vgem module under /lib/modules/$kver/kernel/drivers/gpu/drm/vgem"
fi

# --- 3. virtme-ng ----------------------------------------------------------------------------

find_vng() {
    if command -v vng >/dev/null 2>&1; then
        command -v vng
        return
    fi
    local d
    d=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || return 0
    [[ -x $d/vng ]] && printf '%s' "$d/vng"
    return 0
}

vng=$(find_vng)
if [[ -z $vng ]]; then
    may_install || die "missing: virtme-ng (install it: python3 -m pip install virtme-ng==$VIRTME_NG_VERSION)"
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    pip_args=(install -q --root-user-action=ignore "virtme-ng==$VIRTME_NG_VERSION")
    # Debian's own python3 refuses system-wide pip installs (PEP 668, marked by an
    # EXTERNALLY-MANAGED file next to the standard library) unless told otherwise. virtme-ng
    # is not packaged for Debian 12, and this machine is a disposable test host.
    if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))' 2>/dev/null; then
        pip_args+=(--break-system-packages)
    fi
    say "python3 -m pip ${pip_args[*]}"
    python3 -m pip "${pip_args[@]}" >&2 || die "could not install virtme-ng with: python3 -m pip ${pip_args[*]}"
    hash -r
    vng=$(find_vng)
    [[ -n $vng ]] || die "virtme-ng was installed but its 'vng' script is not on PATH nor in python3's scripts directory"
fi

# --- 4. the guest side -----------------------------------------------------------------------

# A host directory shared read-write with the guest: the guest script lives there, and the
# guest writes there when the command starts (the file's mtime is the host's clock, which
# measures the boot) and the command's exit status (so that a guest that dies before the
# command finishes is told apart from a command that failed).
state=$(mktemp -d "${TMPDIR:-/tmp}/triptych-vm.XXXXXX")
trap 'rm -rf -- "$state"' EXIT

env_names=(PATH HOME LANG RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS)
for name in $(compgen -e); do
    [[ $name == TRIPTYCH_* && $name != TRIPTYCH_VM_* ]] && env_names+=("$name")
done
read -r -a extra_env <<<"${TRIPTYCH_VM_ENV:-}"
for name in "${extra_env[@]}"; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "TRIPTYCH_VM_ENV names '$name', which is not a variable name"
    env_names+=("$name")
done

# The single-quoted `$...` below are meant for the guest's shell, not this one.
# shellcheck disable=SC2016
{
    printf '#!/bin/bash\n'
    printf '# generated by %s\n' "$0"
    for name in "${env_names[@]}"; do
        [[ -n ${!name+set} ]] && printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'cd %q || { echo "[run-in-vm] guest: cannot cd to %q" >&2; exit %d; }\n' "$PWD" "$PWD" "$HARNESS_FAILED"
    printf 'if ! PATH="$PATH:/usr/sbin:/sbin" modprobe vgem; then echo "[run-in-vm] guest: modprobe vgem failed" >&2; exit %d; fi\n' "$HARNESS_FAILED"
    printf 'for _ in $(seq 50); do [ -e /dev/dri/card0 ] && break; sleep 0.1; done\n'
    printf '[ -e /dev/dri/card0 ] || { echo "[run-in-vm] guest: vgem loaded but /dev/dri/card0 did not appear" >&2; exit %d; }\n' "$HARNESS_FAILED"
    printf 'read -r uptime _ < /proc/uptime; echo "$uptime" > %q\n' "$state/started"
    printf '%q ' "$@"
    printf '\nstatus=$?\n'
    printf 'echo "$status" > %q\n' "$state/status"
    printf 'exit "$status"\n'
} >"$state/guest.sh"
chmod +x "$state/guest.sh"

# --force-9p: without it virtme-ng first tries virtiofsd, and Debian 12's qemu ships the old C
# virtiofsd (/usr/lib/qemu/virtiofsd), which does not take virtme-ng's options; each failed try
# costs about 3 s of boot before virtme-ng falls back to 9p anyway.
vng_args=(-r "$kernel" --cpus "${TRIPTYCH_VM_CPUS:-$(nproc)}" --memory "${TRIPTYCH_VM_MEMORY:-3G}"
    --force-9p --rwdir "$state")
[[ "${TRIPTYCH_VM_KVM:-0}" == 1 ]] || vng_args+=(--disable-kvm)
[[ "${TRIPTYCH_VM_VERBOSE:-0}" != 1 ]] || vng_args+=(--verbose)
read -r -a rwdirs <<<"${TRIPTYCH_VM_RWDIRS:-}"
for d in "${rwdirs[@]}"; do
    [[ -d $d ]] || die "TRIPTYCH_VM_RWDIRS names $d, which is not a directory"
    vng_args+=(--rwdir "$d")
done

vm_timeout="${TRIPTYCH_VM_TIMEOUT:-1800}"
[[ $vm_timeout =~ ^[0-9]+$ ]] || die "TRIPTYCH_VM_TIMEOUT must be a number of seconds, not '$vm_timeout'"

say "kernel:  $kernel"
say "vm:      $vng ${vng_args[*]}"
say "cwd:     $PWD"
say "command: $(printf '%q ' "$@")"

# QEMU opens its stdout and stderr again by path (`-chardev file,path=/proc/self/fd/N`), with
# O_TRUNC and an offset of its own per channel: when this script's output is a regular file
# (`> log`, `>> log`), that truncates it and the channels overwrite each other. Pipes have no
# offset, so QEMU gets pipes and `cat` copies them to wherever our output goes.
t0=$(date +%s.%N)
exec {vm_err}> >(cat >&2)
vm_err_pid=$!
set +e
# `timeout` signals its whole process group, so QEMU (a child of vng) goes down with vng.
timeout --kill-after=15 "$vm_timeout" "$vng" "${vng_args[@]}" --exec "$state/guest.sh" \
    </dev/null 2>&"$vm_err" | cat
vng_status=${PIPESTATUS[0]}
set -e
exec {vm_err}>&-
wait "$vm_err_pid" 2>/dev/null || true
t1=$(date +%s.%N)

timed_out=0
if [[ ! -s $state/status ]] && { [[ $vng_status -eq 124 ]] || [[ $vng_status -eq 137 ]]; }; then
    timed_out=1
fi
if [[ ! -e $state/started ]]; then
    [[ $timed_out -eq 0 ]] || die_timeout "the guest did not start the command within TRIPTYCH_VM_TIMEOUT=${vm_timeout} s"
    die "the guest never started the command (vng exited with $vng_status after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s); rerun with TRIPTYCH_VM_VERBOSE=1 to see the kernel console"
fi
t_started=$(date -r "$state/started" +%s.%N)
boot=$(awk -v a="$t0" -v b="$t_started" 'BEGIN{printf "%.1f", b-a}')
run=$(awk -v a="$t_started" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
if [[ ! -s $state/status ]]; then
    [[ $timed_out -eq 0 ]] || die_timeout "the command started (boot ${boot} s) but did not finish within TRIPTYCH_VM_TIMEOUT=${vm_timeout} s; the VM was killed"
    die "the command started (boot ${boot} s) but the guest stopped before it finished (vng exited with $vng_status after a further ${run} s)"
fi
status=$(<"$state/status")
[[ $status =~ ^[0-9]+$ ]] || die "the guest wrote an unreadable exit status: '$status'"
if [[ $status -ne $vng_status ]]; then
    say "note: vng exited with $vng_status, the command with $status; using the command's"
fi
guest_uptime=$(<"$state/started")
say "boot: ${boot} s from script start to command start (guest kernel up ${guest_uptime} s of it), command: ${run} s (including shutdown), exit status: $status"
exit "$status"
