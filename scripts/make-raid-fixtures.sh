#!/usr/bin/env bash
# make-raid-fixtures.sh — build multi-device btrfs test images with *striped* metadata,
# written by the Linux kernel.
#
# Usage (as root):  scripts/make-raid-fixtures.sh [OUTDIR] [SET...]
#                   (OUTDIR default: <repo>/testdata; SET default: all of them)
#
# Every set is made of sparse files that are attached to loop devices, formatted together
# with mkfs.btrfs (metadata, system and data all in the same profile), mounted, filled
# *through the kernel*, unmounted, checked and finally stored as
# OUTDIR/kernel-<set>-devN.img.gz (gzip -9 -n; N = devid).  Produced sets:
#
#   raid10    4 devices, -m raid10 -d raid10
#   raid5     3 devices, -m raid5  -d raid5   (raid56 is "experimental" for mkfs: -f)
#   raid6     4 devices, -m raid6  -d raid6
#   raid0     2 devices, -m raid0  -d raid0
#   raid1c3   3 devices, -m raid1c3 -d raid1c3 (less content)
#
# The content is chosen so that the metadata is several hundred 16 KiB tree blocks that
# spread over many 64 KiB stripe units on *every* device: a reader that maps logical to
# physical addresses wrongly (stripe order, parity rotation, sub-stripes, row offset)
# reads wrong blocks.  About 3500 files with ~225-character names and small inline
# contents in three subvolumes, a writable snapshot, and changes after the snapshot.
# RAID5/6 sets are balanced (metadata relocated) before the final fstrim: see build_set.
#
# File contents are deterministic (seeded generator in fx.py below) and the filesystem
# UUIDs are fixed, but the images are not byte-for-byte reproducible (the kernel stores
# timestamps, device UUIDs and transids).
#
# After unmounting, each set is verified with all its devices attached and scanned:
# `btrfs check --readonly` must exit 0, every chunk must have the set's profile, there
# must be enough tree blocks, and every device must hold tree blocks in enough distinct
# 64 KiB stripe units.  The logical-to-physical mapping used for that count (fx.py
# `stripes`) is cross-checked against btrfs-map-logical for every tree block.
#
# The script is idempotent: it works in a private temp directory, replaces the outputs
# atomically, and its EXIT trap unmounts, detaches and forgets everything it set up.
# KEEP_WORK=1 keeps the temp directory (raw images, dumps, check logs) for debugging.
#
# Needs: btrfs-progs (mkfs.btrfs, btrfs, btrfs-map-logical), util-linux (losetup, mount,
#        fstrim), coreutils, python3, gzip.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
OUTDIR=${1:-$REPO_DIR/testdata}
shift || true
ALL_SETS=(raid10 raid5 raid6 raid0 raid1c3)
SETS=("$@")
[[ ${#SETS[@]} -gt 0 ]] || SETS=("${ALL_SETS[@]}")

# Fixed filesystem UUIDs (distinct from each other and from make-kernel-fixtures.sh's
# 5a1e0001..0003: the kernel keys its device registry by fsid).
declare -A UUID=(
    [raid10]=5a1e0004-b7f5-4c3e-9d2a-000000000004
    [raid5]=5a1e0005-b7f5-4c3e-9d2a-000000000005
    [raid6]=5a1e0006-b7f5-4c3e-9d2a-000000000006
    [raid0]=5a1e0007-b7f5-4c3e-9d2a-000000000007
    [raid1c3]=5a1e0008-b7f5-4c3e-9d2a-000000000008
)
# set -> "devices size profile content balance min_tree_blocks min_units_per_device"
# (balance: see build_set; min_*: checked after the build)
declare -A SPEC=(
    [raid10]="4 192M raid10 big no 300 20"
    [raid5]="3 224M raid5 big yes 300 20"
    [raid6]="4 192M raid6 big yes 300 20"
    [raid0]="2 256M raid0 big no 300 20"
    [raid1c3]="3 160M raid1c3 small no 100 10"
)

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (needs loop devices and mount)"
for cmd in mkfs.btrfs btrfs btrfs-map-logical losetup mount umount mountpoint fstrim python3 gzip; do
    command -v "$cmd" >/dev/null || die "missing command: $cmd"
done
for s in "${SETS[@]}"; do [[ -n ${SPEC[$s]:-} ]] || die "unknown set '$s' (known: ${ALL_SETS[*]})"; done

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# ---------------------------------------------------------------------------------------
# Cleanup bookkeeping (same scheme as make-kernel-fixtures.sh): mounts and loop devices
# are recorded in global arrays so the EXIT trap can undo them.
WORK=$(mktemp -d /tmp/btrfs-rfix.XXXXXX)
MOUNTS=()
LOOPS=()

cleanup() {
    local rc=$? i
    set +e
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        for _ in 1 2 3 4 5; do
            mountpoint -q "${MOUNTS[i]}" || break
            umount "${MOUNTS[i]}" 2>/dev/null || sleep 1
        done
        if mountpoint -q "${MOUNTS[i]}"; then umount -l "${MOUNTS[i]}"; fi
    done
    for i in "${LOOPS[@]}"; do
        btrfs device scan --forget "$i" >/dev/null 2>&1
        losetup -d "$i" 2>/dev/null
    done
    for i in "${SETS[@]}"; do rm -f "$OUTDIR/kernel-$i"-dev*.img.gz.tmp; done
    if [[ -n ${KEEP_WORK:-} ]]; then echo "KEEP_WORK set: left $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# attach FILE -> sets LOOPDEV
attach() {
    LOOPDEV=$(losetup -f --show "$1")
    LOOPS+=("$LOOPDEV")
}

# detach DEV: unregister it from the kernel's btrfs device list, then free the loop device.
detach() {
    local dev=$1 l keep=()
    btrfs device scan --forget "$dev" >/dev/null 2>&1 || true
    losetup -d "$dev"
    for l in "${LOOPS[@]}"; do [[ $l == "$dev" ]] || keep+=("$l"); done
    LOOPS=("${keep[@]+"${keep[@]}"}")
}

# do_mount DEV DIR [mount options...]
do_mount() {
    local dev=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    mount -t btrfs "$@" "$dev" "$dir"
    MOUNTS+=("$dir")
}

# trim DIR: discard free space, so stale copies of COWed tree blocks read back as zeros.
trim() {
    fstrim "$1" || echo "warning: fstrim $1 failed; the .gz files will be larger" >&2
}

# do_umount DIR
do_umount() {
    local dir=$1 m keep=()
    sync
    umount "$dir"
    for m in "${MOUNTS[@]}"; do [[ $m == "$dir" ]] || keep+=("$m"); done
    MOUNTS=("${keep[@]+"${keep[@]}"}")
}

# new_image FILE SIZE: a fresh sparse file.
new_image() {
    rm -f "$1"
    truncate -s "$2" "$1"
}

# store IMG NAME: gzip the image into OUTDIR/NAME.img.gz (atomically).
store() {
    gzip -9 -n -c "$1" >"$OUTDIR/$2.img.gz.tmp"
    mv -f "$OUTDIR/$2.img.gz.tmp" "$OUTDIR/$2.img.gz"
}

# run_check DEV LOGFILE: `btrfs check --readonly`; prints its exit code.
run_check() {
    local rc=0
    btrfs check --readonly "$1" >"$2" 2>&1 || rc=$?
    echo "$rc"
}

# tree_level DEV TREEID: level of the root block of a tree ("-" if absent).  awk reads
# all input so dump-tree never dies of SIGPIPE under pipefail.
tree_level() {
    local lvl
    lvl=$(btrfs inspect-internal dump-tree -t "$2" "$1" 2>/dev/null |
        awk '!done && /^node [0-9]+ level [0-9]+/ { print $4; done = 1 }
             !done && /^leaf [0-9]+ items/      { print 0;  done = 1 }')
    echo "${lvl:--}"
}

SUMMARY=()

# ---------------------------------------------------------------------------------------
# fx.py: deterministic content generator (the `gen` / `files` modes of
# make-kernel-fixtures.sh's helper, same output for the same seed) and the stripe
# analysis of a dump-tree output.
FX="$WORK/fx.py"
cat >"$FX" <<'PYEOF'
import math, os, random, re, subprocess, sys
from collections import defaultdict

BLOCK = 4096
FILLER = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY\n"

def gen(mode, size, seed):
    """pattern: every 4 KiB block starts with "<seed> block <n>" then a fixed filler line."""
    if size <= 0:
        return b""
    if mode != "pattern":
        sys.exit("unknown mode " + mode)
    body = FILLER * (BLOCK // len(FILLER) + 1)
    out = bytearray()
    for b in range((size + BLOCK - 1) // BLOCK):
        hdr = ("%s block %d\n" % (seed, b)).encode()
        out += hdr + body[:BLOCK - len(hdr)]
    return bytes(out[:size])

def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)

def cmd_gen(size, seed, mode):
    """gen SIZE SEED MODE: write SIZE bytes of content to stdout."""
    sys.stdout.buffer.write(gen(mode, parse_size(size), seed))

def cmd_files(d, prefix, count, lo, hi, seed, mode):
    """files DIR PREFIX COUNT MIN MAX SEED MODE: PREFIX-0000.. with log-uniform sizes."""
    count, lo, hi = int(count), parse_size(lo), parse_size(hi)
    rnd = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        size = int(math.exp(rnd.uniform(math.log(max(lo, 1)), math.log(max(hi, 1)))))
        with open(os.path.join(d, "%s-%04d" % (prefix, i)), "wb") as f:
            f.write(gen(mode, size, "%s/%d" % (seed, i)))

# ---- stripe analysis ---------------------------------------------------------------
# Logical -> physical as the kernel maps it (fs/btrfs/volumes.c, btrfs_map_block):
#   RAID0   unit nr -> stripe nr % n, row nr / n
#   RAID10  unit nr -> stripe (nr % (n/sub))*sub + copy, row nr / (n/sub)
#   RAID5/6 unit nr -> data index nr % data, row nr / data, stripe (row + index) % n
#           (P at (row + data) % n, Q at (row + data + 1) % n)
#   others  every stripe holds the whole chunk
CHUNK_RE = re.compile(r"key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)")

def parse_chunks(path):
    chunks, cur = [], None
    for line in open(path):
        m = CHUNK_RE.search(line)
        if m:
            cur = {"logical": int(m.group(1)), "stripes": []}
            chunks.append(cur)
            continue
        if cur is None:
            continue
        t = line.split()
        if t[:1] == ["length"]:
            cur["length"] = int(t[1]); cur["stripe_len"] = int(t[5]); cur["type"] = t[7]
        elif t[:1] == ["num_stripes"]:
            cur["num_stripes"] = int(t[1]); cur["sub_stripes"] = int(t[3])
        elif t[:1] == ["stripe"] and "devid" in t:
            cur["stripes"].append((int(t[3]), int(t[5])))
        elif t[:1] == ["item"]:
            cur = None
    return chunks

def profile(ctype):
    for p in ("RAID10", "RAID1C3", "RAID1C4", "RAID1", "RAID0", "RAID5", "RAID6", "DUP"):
        if p in ctype.split("|"):
            return p
    return "SINGLE"

def locate(c, logical):
    """[(role, devid, physical)] of the first byte of `logical` (role: copy N / P / Q)."""
    off = logical - c["logical"]
    sl, n, st, p = c["stripe_len"], len(c["stripes"]), c["stripes"], profile(c["type"])
    nr, inner = divmod(off, sl)
    if p == "RAID0":
        row, idx = divmod(nr, n)
        return [("copy0", st[idx][0], st[idx][1] + row * sl + inner)]
    if p == "RAID10":
        sub = c["sub_stripes"]; factor = n // sub
        row, grp = divmod(nr, factor)
        return [("copy%d" % k, st[grp * sub + k][0], st[grp * sub + k][1] + row * sl + inner) for k in range(sub)]
    if p in ("RAID5", "RAID6"):
        data = n - (1 if p == "RAID5" else 2)
        row, di = divmod(nr, data)
        out = [("copy0",) + (st[(row + di) % n][0], st[(row + di) % n][1] + row * sl + inner)]
        for k, role in enumerate(("P", "Q")[: n - data]):
            s = st[(row + data + k) % n]
            out.append((role, s[0], s[1] + row * sl + inner))
        return out
    return [("copy%d" % k, s[0], s[1] + off) for k, s in enumerate(st)]

def cmd_stripes(dump, chunkdump, dev="", *devmap):
    """stripes DUMP CHUNKDUMP [DEV DEVPATH=DEVID...]: counts of tree blocks and 64 KiB units;
    with DEV, every block's mapping is compared with btrfs-map-logical's."""
    blocks = set()
    for line in open(dump):
        m = re.match(r"(?:leaf (\d+) items|node (\d+) level)", line)
        if m:
            blocks.add(int(m.group(1) or m.group(2)))
    chunks = sorted(parse_chunks(chunkdump), key=lambda c: c["logical"])
    units, dev_units, dev_blocks, parity_units, types = set(), defaultdict(set), defaultdict(int), defaultdict(set), defaultdict(int)
    expected = {}
    for b in sorted(blocks):
        c = next((c for c in chunks if c["logical"] <= b < c["logical"] + c["length"]), None)
        if c is None:
            sys.exit("block %d is in no chunk" % b)
        types[c["type"]] += 1
        units.add((c["logical"], (b - c["logical"]) // c["stripe_len"]))
        locs = locate(c, b)
        expected[b] = sorted((d, phys) for role, d, phys in locs)   # btrfs-map-logical lists P/Q too
        for role, d, phys in locs:
            if role.startswith("copy"):
                dev_units[d].add(phys // 65536); dev_blocks[d] += 1
            else:
                parity_units[d].add(phys // 65536)
    # every computed copy must hold the block: header bytenr (offset 48) equal to the
    # logical address; and btrfs-map-logical must agree wherever it answers (v6.2 prints
    # nothing for a block whose extent item is the first item of an extent tree leaf)
    mism = hdr_bad = unanswered = 0
    if dev:
        path2id = dict(x.split("=") for x in devmap)
        id2path = {int(v): k for k, v in path2id.items()}
        fds = {d: open(p, "rb") for d, p in id2path.items()}
        for b in sorted(blocks):
            for role, d, phys in locate(next(c for c in chunks if c["logical"] <= b < c["logical"] + c["length"]), b):
                if not role.startswith("copy"):
                    continue
                fds[d].seek(phys + 48)
                if int.from_bytes(fds[d].read(8), "little") != b:
                    hdr_bad += 1
                    print("devid %d physical %d does not hold block %d" % (d, phys, b), file=sys.stderr)
            out = subprocess.run(["btrfs-map-logical", "-l", str(b), dev], capture_output=True, text=True).stdout
            got = set()
            for line in out.splitlines():
                m = re.match(r"mirror \d+ logical \d+ physical (\d+) device (\S+)", line)
                if m:
                    got.add((int(path2id.get(m.group(2), "-1")), int(m.group(1))))
            if not got:
                unanswered += 1
            elif sorted(got) != expected[b]:
                mism += 1
                if mism <= 5:
                    print("map mismatch for %d: ours %s, btrfs-map-logical %s" % (b, expected[b], sorted(got)), file=sys.stderr)
    print("tree_blocks %d" % len(blocks))
    print("logical_units %d" % len(units))
    print("chunk_types %s" % ",".join("%s:%d" % kv for kv in sorted(types.items())))
    for d in sorted(set(dev_units) | set(parity_units)):
        print("dev %d blocks %d units %d parity_units %d" % (d, dev_blocks[d], len(dev_units[d]), len(parity_units[d])))
    print("map_checked %d mismatches %d unanswered %d header_mismatches %d" % (len(blocks) if dev else 0, mism, unanswered, hdr_bad))

cmds = {"gen": cmd_gen, "files": cmd_files, "stripes": cmd_stripes}
cmds[sys.argv[1]](*sys.argv[2:])
PYEOF
fx() { python3 "$FX" "$@"; }

# Remove stale registrations of unmounted btrfs devices (e.g. from an aborted earlier run
# with the same fixed fsid).  Mounted filesystems are not affected.
btrfs device scan --forget >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------
# populate MNT SEED SCALE: the content.  Names are long (~225 characters, low entropy:
# they compress well; each is stored 3 times) so each file costs ~1.2 KiB of fs tree
# items; contents are small inline extents plus a few regular extents that cross data
# stripe units.
populate() {
    local M=$1 seed=$2 scale=$3 dirs per sv1 sv2 i f lp
    if [[ $scale == big ]]; then dirs=20 per=130 sv1=450 sv2=230; else dirs=8 per=100 sv1=200 sv2=100; fi
    lp="n-$(printf 'a-rather-long-file-name-%.0s' {1..9})"
    for i in $(seq -w 0 $((dirs - 1))); do
        fx files "$M/top/d$i" "$lp" "$per" 1 400 "$seed/top/d$i" pattern
    done
    fx files "$M/top/medium" m 12 8K 300K "$seed/medium" pattern    # regular extents
    fx gen 1M "$seed/big" pattern >"$M/top/big"                    # spans data stripe units
    btrfs subvolume create "$M/sv1" >/dev/null                     # id 256
    fx files "$M/sv1/files" "$lp" "$sv1" 1 400 "$seed/sv1" pattern
    fx gen 256K "$seed/sv1-big" pattern >"$M/sv1/big"
    btrfs subvolume create "$M/sv2" >/dev/null                     # id 257
    fx files "$M/sv2/files" "$lp" "$sv2" 1 400 "$seed/sv2" pattern
    sync
    btrfs subvolume snapshot "$M/sv1" "$M/sv1-snap" >/dev/null     # id 258 (writable)
    sync
    # changes after the snapshot, in the source and in the snapshot: COW of shared blocks
    rm -f "$M"/sv1/files/*3
    for f in "$M"/sv1/files/*[05]; do fx gen 300 "$seed/append/${f##*/}" pattern >>"$f"; done
    rm -f "$M"/sv1-snap/files/*7
    fx files "$M/sv1-snap/new" "$lp" $((sv1 / 4)) 1 400 "$seed/snap-new" pattern
    fx gen 64K "$seed/ow" pattern | dd of="$M/sv1/big" bs=64K seek=1 conv=notrunc status=none
    rm -f "$M"/top/d0*/*1
    sync
}

# build_set SET: make, fill, verify and store one set.
build_set() {
    local set=$1 name=kernel-$1
    local ndev size prof content balance minblocks minunits
    read -r ndev size prof content balance minblocks minunits <<<"${SPEC[$set]}"
    local M="$WORK/mnt-$name" i devs=() imgs=() devmap=()
    log "$name: mkfs.btrfs -m $prof -d $prof on $ndev sparse files of $size"
    for ((i = 1; i <= ndev; i++)); do
        new_image "$WORK/$name-dev$i.img" "$size"
        attach "$WORK/$name-dev$i.img"
        devs+=("$LOOPDEV")
        imgs+=("$WORK/$name-dev$i.img")
    done
    # devids follow the order of the devices on the mkfs command line
    mkfs.btrfs -q -f -U "${UUID[$set]}" -m "$prof" -d "$prof" "${devs[@]}"
    btrfs device scan "${devs[@]}" >/dev/null
    do_mount "${devs[0]}" "$M"
    log "$name: populating ($content)"
    populate "$M" "$set" "$content"
    if [[ $balance == yes ]]; then
        # The kernel cannot discard inside RAID5/6 chunks (fstrim skips them), so stale
        # copies of COWed tree blocks would stay (the .gz ~1/3 larger).  Relocating all
        # metadata (and system) chunks moves the live tree blocks into fresh chunks; the
        # old chunks are freed and then trimmed as unallocated device space.
        log "$name: balance -m -s (relocate metadata so that fstrim can drop stale blocks)"
        btrfs balance start -m -s -f "$M" >&2
        sync
    fi
    trim "$M"
    do_umount "$M"

    log "$name: verification (all devices attached and scanned)"
    local rc d id
    btrfs device scan "${devs[@]}" >/dev/null
    for ((i = 0; i < ndev; i++)); do
        id=$(btrfs inspect-internal dump-super "${devs[i]}" | awk '$1 == "dev_item.devid" { print $2 }')
        [[ $id -eq $((i + 1)) ]] || die "$name: ${devs[i]} has devid $id, expected $((i + 1))"
        devmap+=("${devs[i]}=$id")
    done
    rc=$(run_check "${devs[0]}" "$WORK/$name.check")
    cat "$WORK/$name.check" >&2
    [[ $rc -eq 0 ]] || die "$name: btrfs check --readonly exited $rc"
    btrfs inspect-internal dump-tree "${devs[0]}" >"$WORK/$name.dump"
    btrfs inspect-internal dump-tree -t 3 "${devs[0]}" >"$WORK/$name.chunks"
    fx stripes "$WORK/$name.dump" "$WORK/$name.chunks" "${devs[0]}" "${devmap[@]}" >"$WORK/$name.stripes"
    cat "$WORK/$name.stripes" >&2
    btrfs inspect-internal dump-super "${devs[0]}" >"$WORK/$name.super"
    local levels="" t
    for t in 1 2 3 5 7 256 257 258; do levels+=" $t:$(tree_level "${devs[0]}" "$t")"; done
    printf 'root levels (tree:level):%s\n' "$levels" >&2
    awk '$1 ~ /^(generation|bytes_used|num_devices|total_bytes)$/ { printf "%s %s  ", $1, $2 } END { print "" }' "$WORK/$name.super" >&2
    grep -E 'length|stripe [0-9]+ devid' "$WORK/$name.chunks" >&2
    for d in "${devs[@]}"; do detach "$d"; done

    local blocks units mism hbad unans types bad
    blocks=$(awk '$1 == "tree_blocks" { print $2 }' "$WORK/$name.stripes")
    units=$(awk '$1 == "logical_units" { print $2 }' "$WORK/$name.stripes")
    mism=$(awk '$1 == "map_checked" { print $4 }' "$WORK/$name.stripes")
    types=$(awk '$1 == "chunk_types" { print $2 }' "$WORK/$name.stripes")
    [[ $blocks -ge $minblocks ]] || die "$name: only $blocks tree blocks (want >= $minblocks)"
    [[ $mism -eq 0 ]] || die "$name: $mism tree blocks map differently in btrfs-map-logical"
    hbad=$(awk '$1 == "map_checked" { print $8 }' "$WORK/$name.stripes")
    unans=$(awk '$1 == "map_checked" { print $6 }' "$WORK/$name.stripes")
    [[ $((unans * 20)) -le $blocks ]] || die "$name: btrfs-map-logical did not answer for $unans of $blocks tree blocks"
    [[ $hbad -eq 0 ]] || die "$name: $hbad computed block locations do not hold the block"
    # every chunk (not only those holding tree blocks) must have the set's profile
    bad=$(grep -o 'type [A-Z][A-Z0-9|]*' "$WORK/$name.chunks" | grep -vic "|$prof\$" || true)
    [[ $bad -eq 0 ]] || die "$name: $bad chunks without profile $prof: $(grep -o 'type [A-Z][A-Z0-9|]*' "$WORK/$name.chunks" | sort | uniq -c | tr -s ' \n' ' ')"
    for ((i = 1; i <= ndev; i++)); do
        local u
        u=$(awk -v d="$i" '$1 == "dev" && $2 == d { print $6 }' "$WORK/$name.stripes")
        [[ ${u:-0} -ge $minunits ]] || die "$name: devid $i holds tree blocks in only ${u:-0} stripe units (want >= $minunits)"
    done

    for ((i = 1; i <= ndev; i++)); do store "${imgs[i - 1]}" "$name-dev$i"; done
    local gz=0 g
    for ((i = 1; i <= ndev; i++)); do
        g=$(stat -c %s "$OUTDIR/$name-dev$i.img.gz")
        gz=$((gz + g))
        SUMMARY+=("$(printf '%-22s %9d  %s' "$name-dev$i.img.gz" "$g" "$(awk -v d="$i" '$1 == "dev" && $2 == d { print "blocks " $4 ", units " $6 ", parity units " $8 }' "$WORK/$name.stripes")")")
    done
    SUMMARY+=("$(printf '%-22s %9d  %s tree blocks, %s logical 64K units, chunks %s, check rc=%s; levels%s' "$name (set)" "$gz" "$blocks" "$units" "$types" "$rc" "$levels")")
}

for s in "${SETS[@]}"; do build_set "$s"; done

# Make sure no stale registrations stay behind for later runs or for tests.
btrfs device scan --forget >/dev/null 2>&1 || true

printf '\n%-22s %9s  %s\n' "file" "gz bytes" "tree blocks stored (copies), distinct 64K units"
printf '%s\n' "${SUMMARY[@]}"
printf '\nOutputs in %s\n' "$OUTDIR"
