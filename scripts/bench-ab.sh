#!/usr/bin/env bash
# bench-ab.sh IMG RUNS NAME1 BIN1 NAME2 BIN2 ... — two (or more) btrfs-refcheck builds side by side on one image:
# alternating, the image's page cache warmed before each run (scripts/bench-cache.py), medians of wall, CPU and peak
# RSS. For before/after comparisons of a change (publish each build with scripts/publish.sh and copy the binary);
# run it twice with the order swapped, the first build of a pair tends to be measured a little faster.
# For instruction counts, which do not depend on the machine's load:
#   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out BIN -q IMG   (the "I refs" line)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 4 ] || { echo "usage: $0 IMG RUNS NAME BIN [NAME BIN]..." >&2; exit 2; }
img=$1; runs=$2; shift 2
names=(); exes=()
while [ $# -gt 1 ]; do names+=("$1"); exes+=("$2"); shift 2; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for e in "${exes[@]}"; do "$e" "$img" >/dev/null 2>&1; done
for i in $(seq 1 "$runs"); do
  for k in "${!exes[@]}"; do
    python3 "$here/bench-cache.py" warm "$img"
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/$k.$i" "${exes[$k]}" "$img" > "$tmp/out.$k.$i" 2>&1
  done
done
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
for k in "${!exes[@]}"; do
  w=$(for i in $(seq 1 "$runs"); do awk '{print $1}' "$tmp/$k.$i"; done | median)
  c=$(for i in $(seq 1 "$runs"); do awk '{print $2+$3}' "$tmp/$k.$i"; done | median)
  m=$(for i in $(seq 1 "$runs"); do awk '{print $4}' "$tmp/$k.$i"; done | median)
  echo "${names[$k]}: wall ${w} s, cpu ${c} s, peak RSS $((m/1024)) MiB ($(grep -m1 verdict "$tmp/out.$k.1"))"
done
