#!/usr/bin/env bash
# Runs triptych's whole test suite: unit tests, process-level tests on this machine, the same
# process-level tests in a Debian 13 userspace, the real-GPU check's self-test, fuzzing, and the
# kernel-in-the-loop tests (real DMA-BUFs and sync_files) inside a VM under two kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
# The window tests run a real X server and a real Wayland compositor.
if ! command -v Xvfb >/dev/null || ! command -v weston-screenshooter >/dev/null; then
  echo "setup: installing xvfb and weston"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xvfb weston
fi
# strace counts the socket calls of a steady run (tests/tests/mailbox.rs).
if ! command -v strace >/dev/null; then
  echo "setup: installing strace"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace
fi
echo "== cargo test (workspace)"
# Tests whose subject depends on the machine skip, saying so, where it is missing; where this
# machine has it, they must run, so a broken detection fails instead of skipping. (The variables
# and their tests: tests/src/lib.rs. The VM run sets its own.)
if grep -qw avx2 /proc/cpuinfo; then export TRIPTYCH_REQUIRE_AVX2=1; fi
if unshare --user true 2>/dev/null; then export TRIPTYCH_REQUIRE_USERNS=1; fi
# No DRM device (nothing under /dev/dri): the tests of how --buffers dmabuf fails without one.
if [ -z "$(ls -A /dev/dri 2>/dev/null)" ]; then export TRIPTYCH_REQUIRE_NO_DRI=1; fi
if strace -f -o /dev/null true 2>/dev/null; then export TRIPTYCH_REQUIRE_STRACE=1; fi
cargo build --workspace --all-targets
echo "== the product crates: no test code; the engine links no command line (clap), benchmarks or adversaries, and the children's code only for one executable"
for crate in clap triptych-cli triptych-bench triptych-adversary; do
  if cargo tree -p triptych -e normal,build --prefix none | grep -q "^$crate "; then
    echo "FAIL: the engine (triptych) depends on $crate" >&2
    exit 1
  fi
done
for crate in triptych-cli triptych-gpu-process triptych-renderer-process; do
  for dep in triptych-adversary triptych-bench; do
    if cargo tree -p "$crate" -e normal,build --prefix none | grep -q "^$dep "; then
      echo "FAIL: $crate depends on $dep" >&2
      exit 1
    fi
  done
done
# A headless embedder builds the engine without its window support, and without winit; without
# the children feature (one executable) it links neither child's code.
cargo build -p triptych --no-default-features
for crate in winit triptych-gpu-process triptych-renderer-process; do
  if cargo tree -p triptych --no-default-features -e normal --prefix none | grep -q "^$crate "; then
    echo "FAIL: the engine without its default features still depends on $crate" >&2
    exit 1
  fi
done
if grep -rn --include='*.rs' -E 'cfg\((not\()?debug_assertions' launcher cli gpu-process renderer-process ipc-protocol sys scene trace sandbox; then
  echo "FAIL: a product crate compiles code by build profile (cfg(debug_assertions)); test code belongs in the adversary or test crates" >&2
  exit 1
fi
echo "== the kernel layer: of the product crates, only triptych-sys depends on libc or nix"
# Every other product crate (each workspace member but the adversaries, benchmarks and tests,
# which issue raw system calls on purpose) makes its system calls through a safe wrapper in sys/
# or through rustix, and names kernel numbers through triptych_sys::abi. A direct dependency,
# normal, build or dev, renamed or not, is what is refused: without one, no libc:: or nix:: path
# compiles.
kernel_deps=$(cargo tree --workspace -e normal,build,dev --depth 1 --prefix none --no-dedupe |
  awk 'NF == 0 { root = ""; next } root == "" { root = $1; next } $1 == "libc" || $1 == "nix" { print root " -> " $1 }' |
  grep -vE '^(triptych-sys|triptych-adversary|triptych-bench|triptych-tests) ' || true)
if [ -n "$kernel_deps" ]; then
  echo "$kernel_deps" >&2
  echo "FAIL: a product crate depends on libc or nix itself; make the call through a wrapper in sys/ (or rustix) and take kernel numbers from triptych_sys::abi" >&2
  exit 1
fi
echo "== the packages an application builds on: each packs, and builds from its package alone"
# Every member that may be published (all but those with publish = false) is packed, with the
# workspace dependencies it names packed beside it (cargo resolves them through a local overlay of
# the registry), and each package is built from its unpacked files: a file the build reads but the
# package leaves out, a path outside the crate's directory or a path dependency without a version
# fails here. A check, not a release: uncommitted changes are packed as they are, and the
# manifests name no homepage or repository yet (--no-metadata). The members are named one by one
# ("NAME VERSION" from cargo metadata): `cargo package --workspace` packs the publish = false ones
# too, and fails on their path dependencies, which have no version.
mapfile -t packaged < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] != []:
        print(p["name"], p["version"])
')
package_args=()
for p in "${packaged[@]}"; do package_args+=(-p "${p% *}"); done
# Cargo takes a registry's package to be the same forever under one version: what it unpacked of
# one (under registry/src/-HASH for the overlay) and what it built of it are kept and reused
# unread. The overlay's packages change from one run to the next under the same version, so what
# an earlier run unpacked of them goes first, and they are built in a target directory of their
# own whose artifacts of this workspace's packages go too (the other dependencies' stay).
packaging=target/packaging
rm -rf target/package "$packaging"/package "$packaging"/debug/.fingerprint/triptych-*
for p in "${packaged[@]}"; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"${p% *}-${p#* }"
done
CARGO_TARGET_DIR=$packaging cargo package --allow-dirty --no-metadata "${package_args[@]}"
# The verification builds a package's library and binaries, not its examples: the engine's
# examples are checked here, in a workspace of the unpacked packages that patches each of them in
# for the registry's. Unpacked with fresh times (tar -m): packed files all carry one fixed time,
# which would make the last run's results look up to date.
unpacked=$(mktemp -d /tmp/triptych-packages.XXXXXX)
members=() patches=()
for p in "${packaged[@]}"; do
  dir="${p% *}-${p#* }"
  tar -xzmf "$packaging/package/$dir.crate" -C "$unpacked"
  members+=("\"$dir\",")
  patches+=("${p% *} = { path = \"$dir\" }")
done
printf '%s\n' '[workspace]' 'resolver = "2"' "members = [${members[*]}]" '[patch.crates-io]' "${patches[@]}" \
  >"$unpacked/Cargo.toml"
cp Cargo.lock "$unpacked/"
cargo check --manifest-path "$unpacked/Cargo.toml" --target-dir "$packaging" --examples
rm -rf "$unpacked"
echo "== formatting, lints (undocumented unsafe blocks among them) and docs, warnings denied"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
cargo test --workspace --no-fail-fast -- --test-threads 2
echo "== the in-process benches, once each in criterion's test mode (their checks run, nothing is timed)"
cargo test -p triptych-renderer-process -p triptych-trace --bench compositor --bench recorder
echo "== release binaries carry no test hook"
cargo build --release --workspace
for b in triptych triptych-gpu triptych-renderer; do
  for word in bench-peer TRIPTYCH_SANDBOX_PROBE TRIPTYCH_HOSTILE TRIPTYCH_TEST_WINDOW_INPUT "sandbox probe "; do
    if grep -q -a -F "$word" "target/release/$b"; then
      echo "FAIL: target/release/$b contains \"$word\": test-only code reached a release build" >&2
      exit 1
    fi
  done
done
echo "ok: no probe or hostile hook in the release binaries"
echo "== the same binaries in a newer userspace (Debian 13: glibc 2.41, Mesa 25)"
tests/userspace/run-tests.sh
echo "== the real-GPU check's own steps, on this machine's GL (llvmpipe)"
scripts/gpu-check.sh prepare
gpu_check_out=$(mktemp -d /tmp/triptych-gpu-check.XXXXXX)
TRIPTYCH_GPU_CHECK_ANY=1 scripts/gpu-check.sh run "$gpu_check_out" || {
  cat "$gpu_check_out/report.md" >&2
  exit 1
}
rm -rf "$gpu_check_out"
echo "== fuzzing every untrusted decoder and validator (about a minute each)"
scripts/fuzz.sh "${TRIPTYCH_FUZZ_SECONDS:-60}"
echo "== kernel-in-the-loop tests (VM with vgem: real DMA-BUFs and sync_files; Linux 6.1 and 6.12)"
tests/vm/run-vm-tests.sh
