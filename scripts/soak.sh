#!/usr/bin/env bash
# A long run that shows the memory and fd counts of all three processes stay flat.
#
#   scripts/soak.sh [FRAMES] [SIZE]     default 100000 frames of 64x48
#
# Builds the release binaries, starts `triptych run`, samples VmRSS and the open fds of the
# launcher, the GPU process and the renderer every two seconds from /proc, prints the samples,
# and fails when any process grew between the first sample after warm-up and the last: fds by
# even one, resident memory by more than 2 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-100000}"
size="${2:-64x48}"
cargo build --release --workspace >/dev/null
out=$(mktemp -d /tmp/triptych-soak.XXXXXX)
trap 'rm -rf "$out"' EXIT
target/release/triptych run --frames "$frames" --size "$size" --buffers shm \
  --out "$out/f.png" --summary-json "$out/summary.json" >"$out/log" 2>&1 &
launcher=$!
sample() { # pid -> "rss_kib fds": fds not counting fences, which live only while a frame
  # waits on them (pipes other than stdio and the report pipe at 200, sync_files, eventfds)
  local rss fds=0 f n l
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  for f in /proc/"$1"/fd/*; do
    n=${f##*/}
    l=$(readlink "$f" 2>/dev/null) || continue
    case "$l" in
      pipe:*) { [ "$n" -le 2 ] || [ "$n" -eq 200 ]; } || continue ;;
      anon_inode:sync_file | "anon_inode:[eventfd]") continue ;;
    esac
    fds=$((fds + 1))
  done
  echo "$rss $fds"
}
child() { # comm -> pid of the launcher's child of that name
  for p in $(cat /proc/"$launcher"/task/*/children 2>/dev/null); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$1" ] && { echo "$p"; return; }
  done
}
printf '%6s  %22s  %22s  %22s\n' "t (s)" "launcher rss/fds" "gpu rss/fds" "renderer rss/fds"
t=0
first=""
last=""
while kill -0 "$launcher" 2>/dev/null; do
  sleep 2
  t=$((t + 2))
  g=$(child gpu); r=$(child renderer)
  [ -n "$g" ] && [ -n "$r" ] || continue
  row="$(sample "$launcher") $(sample "$g") $(sample "$r")"
  kill -0 "$launcher" 2>/dev/null || break
  set -- $row
  printf '%6s  %13s KiB %4s  %13s KiB %4s  %13s KiB %4s\n' "$t" "$1" "$2" "$3" "$4" "$5" "$6"
  # The first sample after warm-up (10 s) is the baseline.
  if [ -z "$first" ] && [ "$t" -ge 10 ]; then first="$row"; fi
  last="$row"
done
wait "$launcher" || { cat "$out/log" >&2; echo "soak: the run failed" >&2; exit 1; }
grep -E "^triptych:|crashes" "$out/log" || true
[ -n "$first" ] || { echo "soak: the run ended before warm-up; use more frames" >&2; exit 1; }
set -- $first; f=("$@"); set -- $last; l=("$@")
names=(launcher gpu renderer)
bad=0
for i in 0 1 2; do
  rss0=${f[$((2 * i))]} fd0=${f[$((2 * i + 1))]} rss1=${l[$((2 * i))]} fd1=${l[$((2 * i + 1))]}
  echo "${names[$i]}: rss ${rss0} -> ${rss1} KiB, fds ${fd0} -> ${fd1}"
  if [ "$fd1" -gt "$fd0" ] || [ "$rss1" -gt $((rss0 + 2048)) ]; then
    echo "soak: ${names[$i]} grew" >&2
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "soak: flat over $frames frames"
exit "$bad"
