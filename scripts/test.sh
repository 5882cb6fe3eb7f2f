#!/usr/bin/env bash
# Runs triptych's whole test suite: unit tests, process-level tests on this machine, and the
# kernel-in-the-loop tests (real DMA-BUFs and sync_files) inside a VM.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
echo "== cargo test (workspace)"
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads 2
echo "== kernel-in-the-loop tests (VM with vgem: real DMA-BUFs and sync_files)"
tests/vm/run-vm-tests.sh
