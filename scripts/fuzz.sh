#!/usr/bin/env bash
# Runs triptych's coverage-guided fuzz targets (cargo-fuzz, libFuzzer, AddressSanitizer) over
# every decoder and validator that reads what a possibly compromised process sent.
#
#   scripts/fuzz.sh [SECONDS]   each target for SECONDS (default 60), from the seed corpus in
#                               fuzz/corpus/, which is copied first so the repository stays as
#                               it is. Any crash, leak or timeout fails the run and leaves its
#                               reproducer under fuzz/artifacts/<target>/.
#
# Needs the nightly toolchain (sanitizers) and cargo-fuzz; installs either when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain (fuzzing needs its sanitizer support)"
  rustup toolchain install nightly --profile minimal || {
    echo "fuzz: the nightly toolchain is missing and could not be installed" >&2
    exit 1
  }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
targets=(child_to_launcher relay violation_report mailbox)
work=$(mktemp -d /tmp/triptych-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd fuzz
echo "== building the fuzz targets (nightly, AddressSanitizer)"
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp corpus/"$t"/* "$work/$t"/
  echo "== fuzz $t for ${seconds}s"
  # -rss_limit_mb bounds memory: an allocation sized by input would show up as a crash here.
  status=0
  cargo +nightly fuzz run "$t" "$work/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    >"$work/$t.log" 2>&1 || status=$?
  grep -E "^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)" "$work/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$work/$t.log" >&2
    echo "FAIL: fuzz target $t found a crash (exit $status); reproducer under fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} passed, 0 failed"
