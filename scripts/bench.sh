#!/usr/bin/env bash
# Benchmark btrfs-refcheck against `btrfs check --readonly` (Debian's btrfs-progs and 6.19) on the same image.
#
#   scripts/bench.sh build [--files N] [--size SIZE] [--out IMG] [--quota]
#                                                                   build a kernel-written image (needs root, loop mounts);
#                                                                   --quota: qgroups on before any file is written, with
#                                                                   1/1 and 1/2 under 2/1 (the snapshots split between them)
#   scripts/bench.sh compare IMG [--runs N] [--out FILE]           time both tools side by side, alternating
#   scripts/bench.sh scaling IMG... [--runs N] [--out FILE]        our time and memory per GiB of tree blocks, per image (N rounds over all images),
#                                                                   raw and net of the fixed cost (an empty filesystem)
#   scripts/bench.sh datacsum IMG [--runs N] [--timeout S] [--out FILE]
#                                                                   check --check-data-csum against its I/O floor (the same
#                                                                   bytes read once, physical order; cold and warm) and
#                                                                   against btrfs check --readonly --check-data-csum
#                                                                   (6.19 when built; stopped after S s, default 600)
#   scripts/bench.sh --ci                                           compare and scaling once on a small committed fixture
#
# btrfs-refcheck is measured as released: the Native AOT executable from scripts/publish.sh.
#
# Defaults: 600000 files on a 24 GiB sparse image (about 2.7 GB of tree blocks); 1/4 and 1/2 sizes with --files.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

die() { echo "bench: $*" >&2; exit 2; }

build() {
  local files=600000 size=24G out=/var/tmp/btrfs-bench.img quota=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --quota) quota=--quota; shift ;;
      --files) files=$2; shift 2 ;;
      --size) size=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      *) die "unknown build option $1" ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || die "build needs root (loop mount)"
  mnt=$(mktemp -d)
  trap 'umount "${mnt:-}" 2>/dev/null || true; rmdir "${mnt:-}" 2>/dev/null || true' EXIT
  rm -f "$out"
  truncate -s "$size" "$out"
  mkfs.btrfs -q -f -U 5a1eb0b0-0000-4000-8000-000000000001 "$out" >/dev/null
  mount -o loop "$out" "$mnt"
  local t0=$SECONDS
  if [ -n "$quota" ]; then
    # qgroups before any file: the kernel accounts every write; the top level and the first snapshots in 1/1, the
    # others in 1/2 (bench-populate.py --quota), both under 2/1
    btrfs quota enable "$mnt"
    for q in 1/1 1/2 2/1; do btrfs qgroup create "$q" "$mnt"; done
    btrfs qgroup assign 1/1 2/1 "$mnt"; btrfs qgroup assign 1/2 2/1 "$mnt"; btrfs qgroup assign 0/5 1/1 "$mnt"
  fi
  echo "populating $out with $files files (8 snapshots, modified after each${quota:+, qgroups on})..." >&2
  python3 "$repo/scripts/bench-populate.py" "$mnt" "$files" $quota
  sync
  if [ -n "$quota" ] && btrfs inspect-internal dump-tree -t quota "$(findmnt -no SOURCE "$mnt")" 2>/dev/null | grep -A1 QGROUP_STATUS | grep -q INCONSISTENT; then
    echo "qgroups INCONSISTENT after populating (a snapshot into another qgroup than its source's): rescanning" >&2
    btrfs quota rescan -w "$mnt" >&2; sync
  fi
  umount "$mnt"
  echo "built $out in $((SECONDS - t0)) s" >&2
  btrfs inspect-internal dump-super "$out" | awk '/^(generation|bytes_used|nodesize)/' >&2
}

# Sets the array `ours` to the btrfs-refcheck command: the Native AOT build, or (if it cannot be published here) the
# JIT build, said loudly; `build` names which.
ours_cmd() {
  mkdir -p "$repo/artifacts"
  if bash "$repo/scripts/publish.sh" "$repo/artifacts/publish" >/dev/null 2>"$repo/artifacts/publish.log"; then
    ours=("$repo/artifacts/publish/btrfs-refcheck"); ours_build="Native AOT (scripts/publish.sh)"
    # the compiler and MSBuild servers the publish leaves behind must not share the cores with the first measurement
    dotnet build-server shutdown >/dev/null 2>&1 || true
  else
    echo "bench: Native AOT publish failed (artifacts/publish.log); measuring the JIT build instead" >&2
    dotnet build "$repo/src/BtrfsRefcheck.Cli" -c Release --nologo -v q >/dev/null
    ours=(dotnet "$repo/src/BtrfsRefcheck.Cli/bin/Release/net10.0/btrfs-refcheck.dll"); ours_build="JIT (dotnet btrfs-refcheck.dll)"
  fi
}

# Sets `progs619` to btrfs-progs 6.19's btrfs (the second peer), or empty with `progs619_why` saying why: from
# BTRFS_PROGS_619_BIN, else build.sh's cache folder, else ../shared/btrfs-progs/build.sh (it prints its bin folder;
# about 4 minutes the first time). BTRFS_PROGS_619_MISSING=REASON makes it unavailable.
find_progs619() {
  progs619=""; progs619_why=""
  local cache=${BTRFS_PROGS_CACHE:-/var/cache/btrfs-progs-6.19} bin=""
  if [ -n "${BTRFS_PROGS_619_MISSING:-}" ]; then progs619_why=$BTRFS_PROGS_619_MISSING; return; fi
  if [ -n "${BTRFS_PROGS_619_BIN:-}" ]; then bin=$BTRFS_PROGS_619_BIN
  elif [ -x "$cache/bin/btrfs" ]; then bin=$cache/bin
  elif [ -f "$repo/../shared/btrfs-progs/build.sh" ]; then bin=$(bash "$repo/../shared/btrfs-progs/build.sh" 2>/dev/null || true)
  fi
  if [ -n "$bin" ] && [ -x "$bin/btrfs" ]; then progs619=$bin/btrfs
  else progs619_why="not found (BTRFS_PROGS_619_BIN, $cache/bin, ../shared/btrfs-progs/build.sh)"; fi
}

# Prints the median of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }

compare() {
  local img="" runs=5 outfile=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) runs=$2; shift 2 ;;
      --out) outfile=$2; shift 2 ;;
      -*) die "unknown compare option $1" ;;
      *) img=$1; shift ;;
    esac
  done
  [ -n "$img" ] && [ -e "$img" ] || die "compare needs an image"
  command -v btrfs >/dev/null || die "btrfs-progs is not installed"
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
  local ours; ours_cmd; ours+=("$img")
  local theirs=(btrfs check --readonly "$img")
  local progs619 progs619_why; find_progs619
  local theirs619=("$progs619" check --readonly "$img")
  local tmp; tmp=$(mktemp -d)
  local cache=(python3 "$repo/scripts/bench-cache.py")
  # btrfs check drops the image's page cache when it opens and closes it (posix_fadvise DONTNEED), so it always
  # reads from disk. Ours is timed twice per round: warm (after reading every metadata chunk, the state the I/O floor
  # is measured in) and cold (after the same eviction btrfs check does).
  "${theirs[@]}" >/dev/null 2>&1 || true
  [ -n "$progs619" ] && { "${theirs619[@]}" >/dev/null 2>&1 || true; }
  "${ours[@]}" >/dev/null 2>&1 || true
  for i in $(seq 1 "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/theirs.$i" "${theirs[@]}" >/dev/null 2>&1 || true
    [ -n "$progs619" ] && { /usr/bin/time -f "%e %U %S %M" -o "$tmp/theirs619.$i" "${theirs619[@]}" >/dev/null 2>&1 || true; }
    "${cache[@]}" warm "$img"
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/ours.$i" "${ours[@]}" >"$tmp/ours.out.$i" 2>&1 || true
    "${cache[@]}" evict "$img"
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/cold.$i" "${ours[@]}" >/dev/null 2>&1 || true
  done
  "${cache[@]}" floor "$img" > "$tmp/floor"
  local tw tc tm ow oc om cw cc floor metabytes tb
  tw=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/theirs.$i"; done | median)
  tc=$(for i in $(seq 1 "$runs"); do awk 'END{print $2 + $3}' "$tmp/theirs.$i"; done | median)
  tm=$(for i in $(seq 1 "$runs"); do awk 'END{print $4}' "$tmp/theirs.$i"; done | median)
  ow=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/ours.$i"; done | median)
  oc=$(for i in $(seq 1 "$runs"); do awk 'END{print $2 + $3}' "$tmp/ours.$i"; done | median)
  om=$(for i in $(seq 1 "$runs"); do awk 'END{print $4}' "$tmp/ours.$i"; done | median)
  cw=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/cold.$i"; done | median)
  cc=$(for i in $(seq 1 "$runs"); do awk 'END{print $2 + $3}' "$tmp/cold.$i"; done | median)
  local line619 ratio619
  if [ -n "$progs619" ]; then
    local nw nc nm
    nw=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/theirs619.$i"; done | median)
    nc=$(for i in $(seq 1 "$runs"); do awk 'END{print $2 + $3}' "$tmp/theirs619.$i"; done | median)
    nm=$(for i in $(seq 1 "$runs"); do awk 'END{print $4}' "$tmp/theirs619.$i"; done | median)
    line619="wall ${nw} s, cpu ${nc} s, peak RSS $((nm / 1024)) MiB ($("$progs619" --version 2>&1 | head -1 | awk '{print $2}'), $progs619)"
    ratio619="wall $(awk -v a="$ow" -v b="$nw" 'BEGIN{printf "%.3f", a/b}') warm, $(awk -v a="$cw" -v b="$nw" 'BEGIN{printf "%.3f", a/b}') cold; cpu $(awk -v a="$oc" -v b="$nc" 'BEGIN{printf "%.3f", a/b}'); RSS $(awk -v a="$om" -v b="$nm" 'BEGIN{printf "%.3f", a/b}')"
  else
    line619="not measured: btrfs-progs 6.19 $progs619_why"; ratio619="-"
  fi
  read -r floor metabytes < "$tmp/floor"
  tb=$(grep -Eo "tree blocks [0-9]+" "$tmp/ours.out.1" | head -1 | awk "{print \$3}" || true)
  local nodesize; nodesize=$(btrfs inspect-internal dump-super "$img" | awk '$1=="nodesize"{print $2}')
  local report
  report=$(cat <<REP
image: $img ($(du -h --apparent-size "$img" | cut -f1) apparent, metadata chunks $((metabytes / 1048576)) MiB, tree blocks ${tb:-?} x $nodesize B = $(( ${tb:-0} * nodesize / 1048576 )) MiB)
machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB RAM; runs: $runs rounds after one warm-up (btrfs check 6.2, 6.19, ours warm, ours cold); medians
btrfs-refcheck build   : $ours_build; btrfs-progs $(btrfs --version | awk '{print $2}') (Debian); 6.19 below
btrfs check --readonly : wall ${tw} s, cpu ${tc} s, peak RSS $((tm / 1024)) MiB ($(btrfs --version | awk '{print $2}'), $(command -v btrfs); it evicts the image's page cache at open and close: always cold)
btrfs check 6.19       : $line619
btrfs-refcheck, warm   : wall ${ow} s, cpu ${oc} s, peak RSS $((om / 1024)) MiB
btrfs-refcheck, cold   : wall ${cw} s, cpu ${cc} s (after the same eviction)
ratio ours/theirs      : wall $(awk -v a="$ow" -v b="$tw" 'BEGIN{printf "%.3f", a/b}') warm, $(awk -v a="$cw" -v b="$tw" 'BEGIN{printf "%.3f", a/b}') cold; cpu $(awk -v a="$oc" -v b="$tc" 'BEGIN{printf "%.3f", a/b}'); RSS $(awk -v a="$om" -v b="$tm" 'BEGIN{printf "%.3f", a/b}')
ratio ours/6.19        : $ratio619
I/O floor (read metadata chunks once, page cache): ${floor} s; ours (warm) / floor: $(awk -v a="$ow" -v b="$floor" 'BEGIN{printf "%.2f", a/b}')x
throughput: $(awk -v t="${tb:-0}" -v n="$nodesize" -v w="$ow" 'BEGIN{printf "%.0f", t*n/w/1048576}') MiB of tree blocks per second
REP
)
  echo "$report"
  [ -n "$outfile" ] && { echo "$report" > "$outfile"; echo "written to $outfile" >&2; }
  rm -rf "$tmp"
}

# Our cost per GiB of tree blocks on each image (medians of N runs, page cache warmed before each), and the spread
# between images: the largest figure per GiB over the smallest, for time and for memory. Each figure is given twice:
# raw, and net of the process's fixed cost, which is measured the same way on an empty filesystem (mkfs.btrfs, no
# files): the runtime, the executable's pages and the first allocations, which do not grow with the volume.
scaling() {
  local imgs=() runs=5 outfile=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) runs=$2; shift 2 ;;
      --out) outfile=$2; shift 2 ;;
      -*) die "unknown scaling option $1" ;;
      *) imgs+=("$1"); shift ;;
    esac
  done
  [ ${#imgs[@]} -gt 0 ] || die "scaling needs images"
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
  command -v mkfs.btrfs >/dev/null || die "btrfs-progs is not installed"
  local img
  for img in "${imgs[@]}"; do [ -e "$img" ] || die "no image $img"; done
  local ours; ours_cmd
  local tmp; tmp=$(mktemp -d)
  truncate -s 256M "$tmp/empty.img"
  mkfs.btrfs -q -f "$tmp/empty.img" >/dev/null
  # "tree-blocks nodesize" of an image (one untimed run).
  shape() {
    "${ours[@]}" "$1" >"$tmp/out" 2>&1 || true
    local tb nodesize
    tb=$(grep -Eo "tree blocks [0-9]+" "$tmp/out" | head -1 | awk '{print $3}')
    nodesize=$(btrfs inspect-internal dump-super "$1" | awk '$1=="nodesize"{print $2}')
    echo "${tb:-0} $nodesize"
  }
  # Round k times image j (page cache warmed first) into $tmp/t.j.k. The rounds go over all images in turn, so that a
  # machine that speeds up or slows down during the measurement moves every image's figures alike.
  local all=("$tmp/empty.img" "${imgs[@]}") j k
  for k in $(seq 1 "$runs"); do
    for j in "${!all[@]}"; do
      python3 "$repo/scripts/bench-cache.py" warm "${all[$j]}"
      /usr/bin/time -f "%e %M" -o "$tmp/t.$j.$k" "${ours[@]}" "${all[$j]}" >/dev/null 2>&1 || true
    done
  done
  # Prints "tree-blocks nodesize wall-median peak-KiB-median" for image j.
  measure() {
    echo "$(shape "${all[$1]}") $(for k in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/t.$1.$k"; done | median) $(for k in $(seq 1 "$runs"); do awk 'END{print $2}' "$tmp/t.$1.$k"; done | median)"
  }
  local base; base=$(measure 0)
  local report="scaling: btrfs-refcheck, $ours_build; $(nproc) cores; $runs rounds over all images, page cache warmed before each run; medians"
  report+=$'\n'$(echo "$base" | awk '{ printf "fixed cost (empty filesystem, %d tree blocks): wall %.3f s, peak RSS %.1f MiB", $1, $3, $4 / 1024 }')
  for j in $(seq 1 ${#imgs[@]}); do echo "${all[$j]} $(measure "$j")" >> "$tmp/rows"; done
  report+=$'\n'$(awk -v base="$base" 'BEGIN { split(base, b, " "); w0 = b[3]; m0 = b[4] / 1024 }
    { g = $2 * $3 / 1073741824; w = $4; m = $5 / 1024
      t = w / g; r = m / g; tn = (w - w0) / g; rn = (m - m0) / g
      printf "%s: tree blocks %d (%.2f GiB): wall %.2f s, peak RSS %.1f MiB; per GiB: %.3f s, %.1f MiB; net of the fixed cost: %.3f s, %.1f MiB\n", $1, $2, g, w, m, t, r, tn, rn
      if (NR == 1 || t < tmin) tmin = t; if (NR == 1 || t > tmax) tmax = t
      if (NR == 1 || r < rmin) rmin = r; if (NR == 1 || r > rmax) rmax = r
      if (NR == 1 || tn < tnmin) tnmin = tn; if (NR == 1 || tn > tnmax) tnmax = tn
      if (NR == 1 || rn < rnmin) rnmin = rn; if (NR == 1 || rn > rnmax) rnmax = rn }
    END { printf "spread (largest / smallest per GiB): time %.2f, memory %.2f; net of the fixed cost: time %.2f, memory %.2f", tmax / tmin, rmax / rmin, tnmax / tnmin, rnmax / rnmin }' "$tmp/rows")
  echo "$report"
  [ -n "$outfile" ] && { echo "$report" > "$outfile"; echo "written to $outfile" >&2; }
  rm -rf "$tmp"
}

# --check-data-csum: our data checksums phase and whole check against the I/O floor (bench-datafloor.py --csum: every
# copy of every csum-covered range read once, physical order, 8 MiB preads) and against btrfs check's own
# --check-data-csum (which evicts the image's pages: cold). Ours and the floor are measured cold (after the same
# eviction) and warm (right after a cold run). One-device images.
datacsum() {
  local img="" runs=3 outfile="" timeout=600
  while [ $# -gt 0 ]; do
    case "$1" in
      --runs) runs=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      --out) outfile=$2; shift 2 ;;
      -*) die "unknown datacsum option $1" ;;
      *) img=$1; shift ;;
    esac
  done
  [ -n "$img" ] && [ -e "$img" ] || die "datacsum needs an image"
  [ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
  local progs=btrfs
  for d in "${BTRFS_PROGS_619_BIN:-}" /var/cache/btrfs-progs-6.19/bin; do
    [ -n "$d" ] && [ -x "$d/btrfs" ] && { progs=$d/btrfs; break; }
  done
  local ours; ours_cmd
  local tmp; tmp=$(mktemp -d)
  local cache=(python3 "$repo/scripts/bench-cache.py") floor=(python3 "$repo/scripts/bench-datafloor.py" --csum "$img")
  phase() { grep -Eo "phase 'data checksums': [0-9]+" "$1" | awk '{print $NF / 1000}'; }
  for i in $(seq 1 "$runs"); do
    "${cache[@]}" evict "$img"; "${floor[@]}" > "$tmp/floor-cold.$i"
    "${cache[@]}" evict "$img"
    /usr/bin/time -f "%e %M" -o "$tmp/ours-cold.$i" "${ours[@]}" check --check-data-csum "$img" > "$tmp/out-cold.$i" 2>&1 || true
    "${floor[@]}" > "$tmp/floor-warm.$i"
    /usr/bin/time -f "%e %M" -o "$tmp/ours-warm.$i" "${ours[@]}" check --check-data-csum "$img" > "$tmp/out-warm.$i" 2>&1 || true
  done
  local t0=$SECONDS theirs rc=0
  timeout "$timeout" /usr/bin/time -f "%e %M" -o "$tmp/theirs" "$progs" check --readonly --check-data-csum "$img" > "$tmp/theirs.out" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ]; then theirs="more than $timeout s (stopped)"; else theirs="wall $(tail -1 "$tmp/theirs" | awk '{print $1}') s, peak RSS $(( $(tail -1 "$tmp/theirs" | awk '{print $2}') / 1024 )) MiB, exit $rc"; fi
  local fc fw oc ow pc pw om bytes verified
  fc=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/floor-cold.$i"; done | median)
  fw=$(for i in $(seq 1 "$runs"); do awk 'END{print $1}' "$tmp/floor-warm.$i"; done | median)
  bytes=$(awk '{print $2}' "$tmp/floor-cold.1")
  oc=$(for i in $(seq 1 "$runs"); do tail -1 "$tmp/ours-cold.$i" | awk '{print $1}'; done | median)
  ow=$(for i in $(seq 1 "$runs"); do tail -1 "$tmp/ours-warm.$i" | awk '{print $1}'; done | median)
  om=$(for i in $(seq 1 "$runs"); do tail -1 "$tmp/ours-cold.$i" | awk '{print $2}'; done | median)
  pc=$(for i in $(seq 1 "$runs"); do phase "$tmp/out-cold.$i"; done | median)
  pw=$(for i in $(seq 1 "$runs"); do phase "$tmp/out-warm.$i"; done | median)
  verified=$(grep -Eo "data verified [0-9]+" "$tmp/out-cold.1" | awk '{print $3}')
  local report
  report=$(cat <<REP
image: $img; csum-covered data, every copy: $((bytes / 1048576)) MiB (floor) / $(( ${verified:-0} / 1048576 )) MiB (verified by ours); $(nproc) cores; $runs rounds, medians
btrfs-refcheck build : $ours_build; findings: $(grep -Eo "findings: .*" "$tmp/out-cold.1")
I/O floor (same bytes read once, physical order): cold ${fc} s, warm ${fw} s
ours, data checksums phase: cold ${pc} s ($(awk -v a="$pc" -v b="$fc" 'BEGIN{printf "%.2f", a/b}')x floor), warm ${pw} s ($(awk -v a="$pw" -v b="$fw" 'BEGIN{printf "%.2f", a/b}')x floor)
ours, whole check --check-data-csum: cold ${oc} s, warm ${ow} s, peak RSS $((om / 1024)) MiB
btrfs check --readonly --check-data-csum ($("$progs" --version | head -1)): $theirs$( [ "$rc" -ne 124 ] && awk -v a="$oc" -v b="$(tail -1 "$tmp/theirs" | awk '{print $1}')" 'BEGIN{printf "; ours cold / theirs: %.3f", a/b}')
REP
)
  echo "$report"
  [ -n "$outfile" ] && { echo "$report" > "$outfile"; echo "written to $outfile" >&2; }
  rm -rf "$tmp"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  compare) shift; compare "$@" ;;
  scaling) shift; scaling "$@" ;;
  datacsum) shift; datacsum "$@" ;;
  --ci)
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    gzip -dc testdata/kernel-snapshots.img.gz | cp --sparse=always /dev/stdin "$tmp/ci.img"
    compare "$tmp/ci.img" --runs 1
    scaling "$tmp/ci.img" --runs 1
    # The measured build must say what the tested (JIT) build says: same report, same JSON, same exit code.
    dotnet build src/BtrfsRefcheck.Cli -c Release --nologo -v q >/dev/null
    for args in "" "--json" "dump-tree" "dump-super --json"; do
      a=0; b=0
      # shellcheck disable=SC2086
      artifacts/publish/btrfs-refcheck $args "$tmp/ci.img" >"$tmp/aot.out" 2>&1 || a=$?
      # shellcheck disable=SC2086
      dotnet src/BtrfsRefcheck.Cli/bin/Release/net10.0/btrfs-refcheck.dll $args "$tmp/ci.img" >"$tmp/jit.out" 2>&1 || b=$?
      # phase timings differ from run to run; everything else must not
      if [ "$a" != "$b" ] || ! diff <(grep -v "phase '" "$tmp/aot.out" | grep -v '"ms"') <(grep -v "phase '" "$tmp/jit.out" | grep -v '"ms"') >/dev/null; then
        echo "bench: the Native AOT build and the JIT build disagree on '${args:-check}' (exit $a vs $b)" >&2; exit 1
      fi
    done
    echo "Native AOT and JIT builds agree on check, check --json, dump-tree and dump-super --json" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
