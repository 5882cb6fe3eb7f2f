#!/usr/bin/env bash
# Runs triptych's kernel-in-the-loop tests: builds the test binaries on the host, then boots a
# VM (tests/vm/run-in-vm.sh: Debian's kernel with vgem) once per kernel and runs, inside it, every
# test that needs a real DRM device, with the devices required (a missing device fails instead of
# skipping):
#   - sys/tests/vgem.rs: dumb buffers, PRIME export, DMA_BUF_IOCTL_SYNC, vgem fences, sync_files;
#   - gpu-process's GL unit tests: GL textures exported as DMA-BUFs, pixels read back;
#   - tests/tests/vm_dmabuf.rs: `triptych run --buffers dmabuf` end to end;
#   - tests/tests/backends.rs: `--buffers auto` picks dmabuf where it works;
#   - tests/tests/drift.rs: no role makes a call its policy does not name, DMA-BUF path included;
#   - tests/tests/landlock.rs: the GPU process's Landlock confinement, as this kernel's ABI allows.
#
# Kernels: Debian 12's own 6.1 and the 6.12 kernel bookworm carries (linux-image-6.12-amd64),
# both installed when missing; TRIPTYCH_VM_KERNELS="/boot/vmlinuz-A /boot/vmlinuz-B" overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "== building test binaries for the VM"
mapfile -t bins < <(
  cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
want = {("triptych-sys", "vgem"), ("triptych-gpu-process", "gpu_process"), ("triptych-tests", "vm_dmabuf"), ("triptych-tests", "backends"),
        ("triptych-tests", "drift"), ("triptych-tests", "landlock")}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    # "path+file:///dir/NAME#VERSION" or "path+file:///dir/DIR#NAME@VERSION"
    url, frag = m["package_id"].split("#", 1)
    pkg = frag.split("@")[0] if "@" in frag else url.rstrip("/").rsplit("/", 1)[-1]
    if (pkg, m["target"]["name"]) in want:
        print(m["executable"])
'
)
if [ "${#bins[@]}" -ne 6 ]; then
  echo "run-vm-tests: expected 6 test binaries, found ${#bins[@]}: ${bins[*]}" >&2
  exit 1
fi
cargo build --workspace --bins

guest=$(mktemp /tmp/triptych-vm-tests.XXXXXX.sh)
trap 'rm -f "$guest"' EXIT
{
  echo '#!/bin/sh'
  echo 'set -e'
  # What the VM has: vgem, whose nodes Mesa drives with kms_swrast, and DMA-BUF export there.
  # The host's TRIPTYCH_* variables reach the guest: it has a DRM device, whatever the host has.
  echo 'export TRIPTYCH_REQUIRE_VGEM=1 TRIPTYCH_REQUIRE_DMABUF=1 TRIPTYCH_REQUIRE_KMS_SWRAST=1 RUST_BACKTRACE=1'
  echo 'unset TRIPTYCH_REQUIRE_NO_DRI'
  echo 'echo "== in the VM: kernel $(uname -r)"'
  for b in "${bins[@]}"; do
    filter=""
    # Of the GL unit tests only the DMA-BUF ones need the device; the rest ran on the host.
    case "$(basename "$b")" in
      gpu_process-*) filter="dmabuf_export" ;;
      # The learning mode's own test ran on the host; here the drift check runs with DMA-BUFs.
      drift-*) filter="every_call_each_role_makes_is_named_by_its_policy" ;;
    esac
    echo "echo '== in the VM: $(basename "$b") $filter'"
    echo "'$b' --test-threads 1 $filter"
  done
} >"$guest"
chmod +x "$guest"
# The newest /boot/vmlinuz-<series>.* with vgem, installing PACKAGE first when there is none.
kernel_of() {
  local series=$1 package=$2 k
  pick() {
    for k in /boot/vmlinuz-"$series".*; do
      [ -e "$k" ] || continue
      compgen -G "/lib/modules/${k#/boot/vmlinuz-}/kernel/drivers/gpu/drm/vgem/vgem.ko*" >/dev/null && echo "$k"
    done | sort -V | tail -n1
  }
  k=$(pick)
  if [ -z "$k" ]; then
    echo "== installing $package (kernel $series for the VM)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >&2
    k=$(pick)
  fi
  [ -n "$k" ] || { echo "run-vm-tests: no kernel $series with vgem after installing $package" >&2; exit 1; }
  echo "$k"
}
if [ -n "${TRIPTYCH_VM_KERNELS:-}" ]; then
  read -r -a kernels <<<"$TRIPTYCH_VM_KERNELS"
else
  # One assignment each: a failing lookup inside an array assignment would not stop the script.
  k61=$(kernel_of 6.1 linux-image-amd64)
  k612=$(kernel_of 6.12 linux-image-6.12-amd64)
  kernels=("$k61" "$k612")
fi
for k in "${kernels[@]}"; do
  echo "== booting the VM with $k"
  TRIPTYCH_VM_KERNEL="$k" tests/vm/run-in-vm.sh "$guest"
done
echo "ok: the kernel-in-the-loop tests passed under ${kernels[*]}"
