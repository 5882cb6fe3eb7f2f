#!/usr/bin/env bash
# Runs triptych's host-built binaries and process-level tests in a second, newer userspace:
# Debian 13 (glibc 2.41, Mesa 25), built by tests/userspace/build-rootfs.sh and cached.
#
# Why: the seccomp policies are allowlists, and the call a new C library or driver starts making
# is what breaks them. The same binaries built here (Debian 12) run there, as they would for a
# user who installed them on the newer system: the pipeline, the sandbox status, rule, scan and
# escape tests, the crash tests, the GL unit tests and the syscall drift test
# (tests/tests/drift.rs) must pass under the newer libraries too.
#
# How: bubblewrap puts the root filesystem at / in a new mount namespace (pivot_root, not
# chroot: the kernel refuses CLONE_NEWUSER to a chrooted process, and the launcher creates a
# user namespace for its children), with this checkout bound at the same path, a fresh /proc,
# /dev and /tmp, and /sys read-only. The host's kernel runs it all.
#
# Usage:
#   tests/userspace/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

say() { printf '[userspace] %s\n' "$*" >&2; }

if ! command -v bwrap >/dev/null 2>&1; then
    say "apt-get install -y bubblewrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >&2
fi
root=$(tests/userspace/build-rootfs.sh)
say "root filesystem: $root ($(tr '\n' ' ' <"$root/.complete"))"

echo "== building test binaries for the Debian 13 userspace"
mapfile -t bins < <(
  cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
want = {("triptych-tests", t) for t in ("pipeline", "sandbox_status", "sandbox_rules",
        "sandbox_scan", "sandbox_escapes", "crash", "drift")} | {("triptych-gpu-process", "gpu_process")}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    url, frag = m["package_id"].split("#", 1)
    pkg = frag.split("@")[0] if "@" in frag else url.rstrip("/").rsplit("/", 1)[-1]
    if (pkg, m["target"]["name"]) in want:
        print(m["executable"])
'
)
if [ "${#bins[@]}" -ne 8 ]; then
  echo "userspace: expected 8 test binaries, found ${#bins[@]}: ${bins[*]}" >&2
  exit 1
fi
cargo build --workspace --bins

in_root() {
    # /tmp first: the checkout may live under it, and a later tmpfs would hide its bind.
    bwrap --bind "$root" / --tmpfs /tmp --bind "$repo" "$repo" --ro-bind /sys /sys --proc /proc \
        --dev /dev --chdir "$repo" --die-with-parent --clearenv \
        --setenv PATH /usr/bin:/bin --setenv HOME /tmp --setenv RUST_BACKTRACE 1 -- "$@"
}

echo "== in Debian 13: $(in_root sh -c '. /etc/os-release; echo "$PRETTY_NAME"'), $(in_root ldd --version | head -n1)"
in_root target/debug/triptych run --frames 30 --out /tmp/frame.png
for b in "${bins[@]}"; do
  args=(--test-threads 2)
  # The GL unit tests that export DMA-BUFs need a DRM device; they run in the VM.
  case "$(basename "$b")" in gpu_process-*) args+=(--skip dmabuf_export) ;; esac
  echo "== in Debian 13: $(basename "$b")"
  in_root "$b" "${args[@]}"
done
echo "ok: every test passed in the Debian 13 userspace"
