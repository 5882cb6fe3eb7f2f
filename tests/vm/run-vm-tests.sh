#!/usr/bin/env bash
# Runs triptych's kernel-in-the-loop tests: builds the test binaries on the host, then boots one
# VM (tests/vm/run-in-vm.sh: Debian's kernel with vgem) and runs, inside it, every test that needs
# a real DRM device, with the devices required (a missing device fails instead of skipping):
#   - sys/tests/vgem.rs: dumb buffers, PRIME export, DMA_BUF_IOCTL_SYNC, vgem fences, sync_files;
#   - gpu-process's GL unit tests: GL textures exported as DMA-BUFs, pixels read back;
#   - tests/tests/vm_dmabuf.rs: `triptych run --buffers dmabuf` end to end;
#   - tests/tests/backends.rs: `--buffers auto` picks dmabuf where it works.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "== building test binaries for the VM"
mapfile -t bins < <(
  cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
want = {("triptych-sys", "vgem"), ("gpu-process", "gpu_process"), ("triptych-tests", "vm_dmabuf"), ("triptych-tests", "backends")}
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
if [ "${#bins[@]}" -ne 4 ]; then
  echo "run-vm-tests: expected 4 test binaries, found ${#bins[@]}: ${bins[*]}" >&2
  exit 1
fi
cargo build --workspace --bins

guest=$(mktemp /tmp/triptych-vm-tests.XXXXXX.sh)
trap 'rm -f "$guest"' EXIT
{
  echo '#!/bin/sh'
  echo 'set -e'
  echo 'export TRIPTYCH_REQUIRE_VGEM=1 TRIPTYCH_REQUIRE_DMABUF=1 RUST_BACKTRACE=1'
  for b in "${bins[@]}"; do
    filter=""
    # Of the GL unit tests only the DMA-BUF ones need the device; the rest ran on the host.
    case "$(basename "$b")" in gpu_process-*) filter="dmabuf_export" ;; esac
    echo "echo '== in the VM: $(basename "$b") $filter'"
    echo "'$b' --test-threads 1 $filter"
  done
} >"$guest"
chmod +x "$guest"
echo "== booting the VM"
tests/vm/run-in-vm.sh "$guest"
