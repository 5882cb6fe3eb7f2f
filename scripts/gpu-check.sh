#!/usr/bin/env bash
# The real-GPU check: triptych on a machine with an NVIDIA GPU and its driver, in one short run.
#
#   scripts/gpu-check.sh prepare        # here, on the build machine
#   scripts/gpu-check.sh run OUTDIR     # there, on the GPU machine
#
# `prepare` builds the release binaries and puts, under .gpu-check/ (git-ignored, a few tens of
# MiB, the one directory to copy to the GPU machine next to this checkout):
#   - the three binaries, stripped;
#   - the GL loader libraries the GPU process needs and a driver package does not always bring
#     (glvnd's libEGL, libGLESv2 and libGLdispatch, and libgbm with its libdrm), taken from this
#     machine's Debian packages, in .gpu-check/lib;
#   - an EGL vendor file naming NVIDIA's libEGL_nvidia.so.0, used when the GPU machine has none.
# The GPU machine needs no network and nothing installed but NVIDIA's kernel driver and its
# user-space libraries (libEGL_nvidia.so.0, and nvidia-drm_gbm.so for GBM).
#
# `run` writes OUTDIR/report.md (and one log per step) from these steps, each with a deadline
# (nine minutes at worst in all; on llvmpipe here the whole check takes about ten seconds):
#   1. what the machine is (nvidia-smi, /dev/dri, /dev/nvidia*, kernel);
#   2. triptych doctor, text and JSON;
#   3. triptych run --buffers auto --verify (pixels compared with the reference composite);
#   4. triptych run --buffers dmabuf --verify (fails, naming why, where DMA-BUF export is missing);
#   5. crash recovery: injected kills of both roles and a chaos run, --verify at the end;
#   6. triptych-bench --quick.
# A step that fails is recorded with its exit status and output; the run goes on to the next.
# The exit status is 0 only when steps 2, 3 and 5 passed (DMA-BUF and the bench may not work on
# every driver; the report says what happened).
#
# Without an NVIDIA GPU `run` stops at once, unless TRIPTYCH_GPU_CHECK_ANY=1: then the same steps
# run on whatever GL the machine has (the test command does that with llvmpipe, so that this
# script keeps working between the rare runs on a real GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
readonly DIR=.gpu-check

die() {
    printf 'gpu-check: %s\n' "$*" >&2
    exit 1
}

prepare() {
    command -v strip >/dev/null || die "strip (binutils) is needed"
    cargo build --release --workspace
    rm -rf "$DIR"
    mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/egl_vendor.d"
    for b in triptych triptych-gpu triptych-renderer triptych-bench; do
        strip -o "$DIR/bin/$b" "target/release/$b"
    done
    local lib
    for lib in libEGL.so.1 libGLESv2.so.2 libGLdispatch.so.0 libgbm.so.1 libdrm.so.2 \
        libwayland-server.so.0 libexpat.so.1 libffi.so.8; do
        local path
        # awk reads to the end: an early exit would cut ldconfig off (SIGPIPE, fatal here).
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ && !p {print $NF; p = 1}')
        [ -n "$path" ] || die "$lib is not installed here (scripts/setup-debian.sh installs it)"
        cp -L "$path" "$DIR/lib/$lib"
    done
    cat >"$DIR/egl_vendor.d/10_nvidia.json" <<'JSON'
{
    "file_format_version" : "1.0.0",
    "ICD" : {
        "library_path" : "libEGL_nvidia.so.0"
    }
}
JSON
    du -sh "$DIR"
    echo "gpu-check: prepared $DIR; on the GPU machine run: scripts/gpu-check.sh run OUTDIR"
}

# Runs one step: NAME, SECONDS, COMMAND...; records the result in the report.
step() {
    local name=$1 secs=$2
    shift 2
    local log="$out/$name.log" t0 t1 rc=0
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$secs" "$@" >"$log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    local took
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
    results+=("$name:$rc")
    {
        if [ "$rc" -eq 0 ]; then
            printf '## %s: ok (%s s)\n\n' "$name" "$took"
        elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            printf '## %s: TIMED OUT after %s s\n\n' "$name" "$secs"
        else
            printf '## %s: FAILED, exit status %s (%s s)\n\n' "$name" "$rc" "$took"
        fi
        printf '`%s`\n\n```text\n' "$*"
        # The summary and the last lines say what happened; the whole log is next to the report.
        grep -v -E '^\s*$' "$log" | grep -E -v '\bDEBUG\b|\bTRACE\b' | tail -n 40
        printf '```\n\n'
    } >>"$report"
    echo "gpu-check: $name: exit $rc in $took s" >&2
}

passed() {
    local want=$1 r
    for r in "${results[@]}"; do
        [ "$r" = "$want:0" ] && return 0
    done
    return 1
}

run() {
    out=$1
    [ -x "$DIR/bin/triptych" ] || die "$DIR/bin/triptych is missing: run 'scripts/gpu-check.sh prepare' first"
    mkdir -p "$out"
    report="$out/report.md"
    results=()
    local nvidia=0
    if [ -e /dev/nvidiactl ] || command -v nvidia-smi >/dev/null 2>&1; then
        nvidia=1
    fi
    if [ "$nvidia" -eq 0 ] && [ "${TRIPTYCH_GPU_CHECK_ANY:-0}" != 1 ]; then
        die "no NVIDIA GPU here (no /dev/nvidiactl, no nvidia-smi); TRIPTYCH_GPU_CHECK_ANY=1 runs the steps anyway"
    fi
    # NVIDIA's EGL library, wherever the driver put it: its directory joins the library path.
    local egl_nvidia="" vendor_dirs=""
    egl_nvidia=$(ldconfig -p 2>/dev/null | awk '$1 == "libEGL_nvidia.so.0" && !p {print $NF; p = 1}')
    if [ -z "$egl_nvidia" ]; then
        egl_nvidia=$(find /usr/lib /usr/lib64 /usr/local /lib -name 'libEGL_nvidia.so.0' 2>/dev/null | head -n1 || true)
    fi
    local libpath="$PWD/$DIR/lib"
    [ -z "$egl_nvidia" ] || libpath="$libpath:$(dirname "$egl_nvidia")"
    export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ "$nvidia" -eq 1 ]; then
        if [ -e /usr/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
            export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/10_nvidia.json
        else
            export __EGL_VENDOR_LIBRARY_FILENAMES="$PWD/$DIR/egl_vendor.d/10_nvidia.json"
        fi
        vendor_dirs=$__EGL_VENDOR_LIBRARY_FILENAMES
    fi
    export TRIPTYCH_LOG=info
    local t=$DIR/bin/triptych
    {
        printf '# triptych on a real GPU\n\n'
        printf -- '- date: %s\n- kernel: %s\n' "$(date -u +%FT%TZ)" "$(uname -r)"
        printf -- '- glibc: %s\n' "$(ldd --version 2>/dev/null | head -n1)"
        printf -- '- libEGL_nvidia: %s\n- EGL vendor file: %s\n' "${egl_nvidia:-not found}" "${vendor_dirs:-system default}"
        printf -- '- /dev/dri: %s\n' "$(ls /dev/dri 2>/dev/null | tr '\n' ' ' || true)"
        printf -- '- /dev/nvidia*: %s\n\n' "$(ls -d /dev/nvidia* 2>/dev/null | tr '\n' ' ' || true)"
    } >"$report"
    step machine 30 sh -c 'nvidia-smi 2>&1 || echo "nvidia-smi: not available"; uname -a; cat /proc/cpuinfo | grep -m1 "model name"'
    step doctor 60 "$t" doctor
    step doctor-json 60 sh -c "'$t' doctor --json > '$out/doctor.json' && cat '$out/doctor.json'"
    step run-auto 90 "$t" run --buffers auto --verify --frames 300 --size 1280x720 \
        --out "$out/auto.png" --summary-json "$out/auto.json" --trace "$out/auto-trace.json"
    step run-dmabuf 90 "$t" run --buffers dmabuf --verify --frames 300 --size 1280x720 \
        --out "$out/dmabuf.png" --summary-json "$out/dmabuf.json"
    step crash 90 "$t" run --buffers auto --verify --frames 400 --size 640x480 \
        --fault gpu-after-export:kill@50 --fault renderer-composite:segv@120 \
        --fault gpu-render:abort@200 --chaos 7 --chaos-kills 10 --max-crashes 100 \
        --out "$out/crash.png" --summary-json "$out/crash.json"
    step bench 120 "$DIR/bin/triptych-bench" --quick
    local verdict=ok
    for must in doctor run-auto crash; do
        passed "$must" || verdict=failed
    done
    printf '## verdict: %s (doctor, run-auto and crash must pass; run-dmabuf and bench are recorded)\n' "$verdict" >>"$report"
    echo "gpu-check: report in $report ($verdict)" >&2
    [ "$verdict" = ok ]
}

case "${1:-}" in
prepare) prepare ;;
run)
    [ $# -eq 2 ] || die "usage: scripts/gpu-check.sh run OUTDIR"
    run "$2"
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
