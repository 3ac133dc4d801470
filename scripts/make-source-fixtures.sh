#!/usr/bin/env bash
# make-source-fixtures.sh — build VALID btrfs test images from sources other than the
# Debian btrfs-progs 6.2 mkfs + kernel writes of make-kernel-fixtures.sh: btrfs-progs 6.19
# mkfs with newer features, btrfs-image metadumps (6.2 and 6.19) and their restores,
# btrfs-convert from ext4, seed + sprout, and states captured from a running kernel
# (half-dropped snapshot, interrupted balance) or an interrupted btrfstune.
#
# Usage (as root):  scripts/make-source-fixtures.sh [-o OUTDIR] [IMAGE...]
#                   (OUTDIR default: <repo>/testdata/sources; IMAGE default: all, see ALL)
#                   scripts/make-source-fixtures.sh --survey [-o OUTDIR]
#                   (decompress every image in OUTDIR, run btrfs-refcheck and
#                    `btrfs check --readonly` of 6.2 and 6.19 on it, write OUTDIR/SURVEY.md)
#
# See testdata/sources/README.md for one note per image.  Each build function asserts
# the property its image exists for and the script exits non-zero if one does not hold.
# Images are sparse raw files stored as NAME.img.gz (gzip -9 -n); multi-device sets as
# NAME-devN.img.gz; metadumps as NAME.metadump-62 / NAME.metadump-619.
#
# File contents are deterministic (seeded generator fx.py below) and filesystem UUIDs
# are fixed where the tool allows it (5a1e01NN-...; distinct from the other fixture
# scripts' 5a1e00NN-...), but images are not byte-for-byte reproducible.
#
# Needs: btrfs-progs 6.2 (Debian: btrfs, mkfs.btrfs, btrfs-image, btrfs-convert,
#        btrfstune), btrfs-progs 6.19 via ../shared/btrfs-progs/build.sh, util-linux,
#        e2fsprogs, python3, gzip, gdb (for the interrupted btrfstune images).
# KEEP_WORK=1 keeps the temp directory.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
OUTDIR=$REPO_DIR/testdata/sources
SURVEY=
ARGS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        -o) OUTDIR=$2; shift 2 ;;
        --survey) SURVEY=1; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
ALL=(mkfs619-defaults mkfs619-squota mkfs619-quota mkfs619-rst mkfs619-zoned metadumps
     convert-ext4 seed-sprout kernel-halfdropped kernel-reloc mkfs619-bgt-changing
     mkfs619-csum-changing mkfs619-csum-changing-meta kernel-qgroups kernel-squota
     kernel-csum-xxhash kernel-csum-sha256 kernel-csum-blake2 kernel-spacecache-v1)
[[ ${#ARGS[@]} -gt 0 ]] || ARGS=("${ALL[@]}")

log() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (needs loop devices and mount)"
B62=/usr/bin
B619=$(cd "$REPO_DIR" && bash ../shared/btrfs-progs/build.sh)
[[ -x $B619/btrfs ]] || die "btrfs-progs 6.19 not found"
for cmd in $B62/btrfs /sbin/mkfs.btrfs $B62/btrfs-image $B62/btrfs-convert $B62/btrfstune \
           losetup mount umount mountpoint fstrim fsfreeze mkfs.ext4 python3 gzip; do
    command -v "$cmd" >/dev/null || die "missing command: $cmd"
done
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

WORK=$(mktemp -d /tmp/btrfs-srcfix.XXXXXX)
MOUNTS=()
LOOPS=()
BGPIDS=()
cleanup() {
    local rc=$? i
    set +e
    for i in "${BGPIDS[@]}"; do kill "$i" 2>/dev/null; wait "$i" 2>/dev/null; done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        for _ in 1 2 3 4 5; do
            mountpoint -q "${MOUNTS[i]}" || break
            umount "${MOUNTS[i]}" 2>/dev/null || sleep 1
        done
        if mountpoint -q "${MOUNTS[i]}"; then umount -l "${MOUNTS[i]}"; fi
    done
    for i in "${LOOPS[@]}"; do
        $B62/btrfs device scan --forget "$i" >/dev/null 2>&1
        losetup -d "$i" 2>/dev/null
    done
    rm -f "$OUTDIR"/*.tmp
    if [[ -n ${KEEP_WORK:-} ]]; then echo "KEEP_WORK set: left $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

attach() { LOOPDEV=$(losetup -f --show "$1"); LOOPS+=("$LOOPDEV"); }
detach() {
    local dev=$1 l keep=()
    $B62/btrfs device scan --forget "$dev" >/dev/null 2>&1 || true
    losetup -d "$dev"
    for l in "${LOOPS[@]}"; do [[ $l == "$dev" ]] || keep+=("$l"); done
    LOOPS=("${keep[@]+"${keep[@]}"}")
}
do_mount() {
    local dev=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    mount -t btrfs "$@" "$dev" "$dir" || return 1
    MOUNTS+=("$dir")
}
trim() { fstrim "$1" || echo "warning: fstrim $1 failed; the .gz files will be larger" >&2; }
do_umount() {
    local dir=$1 m keep=()
    sync
    umount "$dir"
    for m in "${MOUNTS[@]}"; do [[ $m == "$dir" ]] || keep+=("$m"); done
    MOUNTS=("${keep[@]+"${keep[@]}"}")
}
new_image() { rm -f "$1"; truncate -s "$2" "$1"; }
store() {   # store FILE NAME.img  -> OUTDIR/NAME.img.gz
    gzip -9 -n -c "$1" >"$OUTDIR/$2.gz.tmp"
    mv -f "$OUTDIR/$2.gz.tmp" "$OUTDIR/$2.gz"
}
store_plain() { cp "$1" "$OUTDIR/$2.tmp"; mv -f "$OUTDIR/$2.tmp" "$OUTDIR/$2"; }
# check_ok BTRFS_BIN DEV_OR_IMG LOG: btrfs check --readonly must pass
check_rc() { local rc=0; "$1" check --readonly "$2" >"$3" 2>&1 || rc=$?; echo "$rc"; }
check_ok() {
    local rc
    rc=$(check_rc "$1" "$2" "$3")
    [[ $rc -eq 0 ]] || { tail -20 "$3" >&2; die "$1 check --readonly $2 exited $rc"; }
}
# check_both DEV NAME [opt62|fst62]: both `btrfs check --readonly` (6.2 and 6.19) must pass.
#   opt62: features newer than 6.2 (squota, raid-stripe-tree): 6.2's verdict is only printed.
#   fst62: the filesystem was made by mkfs 6.2, which leaves free-space-tree entries of its
#          temporary chunks behind ("Space key logical 1048576 length 4194304 has no
#          corresponding block group"; every mkfs-6.2 fixture has them, 6.19 check reports
#          them): 6.19 may fail, but with no other error line than those.
check_both() {
    local rc
    if [[ ${3:-} == fst62 ]]; then
        rc=$(check_rc $B619/btrfs "$1" "$WORK/$2.check619")
        if [[ $rc -ne 0 ]]; then
            if grep -v '^Space key logical [0-9]* length [0-9]* has no corresponding block group$' "$WORK/$2.check619" |
                grep -v 'error(s) found\|^ERROR: cannot scan /dev/' | grep -qi 'error\|wrong\|mismatch\|missing\|corrupt\|invalid\|unresolved\|not found\|has no'; then
                tail -20 "$WORK/$2.check619" >&2; die "$B619/btrfs check --readonly $1: errors besides mkfs 6.2's stale free space entries"
            fi
            echo "btrfs 6.19 check: exit $rc, only mkfs 6.2's stale free space tree entries" >&2
        fi
    else
        check_ok $B619/btrfs "$1" "$WORK/$2.check619"
    fi
    if [[ ${3:-} == opt62 ]]; then
        echo "btrfs 6.2 check --readonly: exit $(check_rc $B62/btrfs "$1" "$WORK/$2.check62") (not required)" >&2
        grep -i 'error\|unsupported' "$WORK/$2.check62" | head -3 >&2 || true
    else
        check_ok $B62/btrfs "$1" "$WORK/$2.check62"
    fi
}
dump_tree() { "$B619/btrfs" inspect-internal dump-tree "$@" 2>/dev/null || true; }
dump_super() { "$B619/btrfs" inspect-internal dump-super "$@" 2>/dev/null || true; }
count() { grep -c -- "$1" || true; }
# sb_bit IMG FIELD BIT: true if superblock FIELD (e.g. compat_ro_flags) has bit BIT set
sb_bit() {
    local v
    v=$(dump_super "$1" | awk -v f="$2" '$1 == f { print $2; exit }')
    [[ -n $v ]] && (( (v >> $3) & 1 ))
}

# ---------------------------------------------------------------------------------------
# fx.py: deterministic content (same generator as make-kernel-fixtures.sh)
FX="$WORK/fx.py"
cat >"$FX" <<'PYEOF'
import fcntl, hashlib, math, os, random, struct, sys
BLOCK = 4096
FILLER = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY\n"
WORDS = ("btrfs extent inode subvolume snapshot reflink chunk stripe device tree node leaf "
         "item key root generation transid checksum crc32c compress zstd zlib lzo inline "
         "prealloc hole backref shared parent owner offset bytenr length level super block").split()
def gen(mode, size, seed):
    rnd = random.Random(seed)
    if size <= 0:
        return b""
    if mode == "random":
        return hashlib.shake_256(seed.encode()).digest(size)
    if mode == "text":
        parts, n = [], 0
        while n < size:
            line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 14))) + "\n"
            parts.append(line); n += len(line)
        return "".join(parts).encode()[:size]
    if mode == "pattern":
        body = FILLER * (BLOCK // len(FILLER) + 1)
        out = bytearray()
        for b in range((size + BLOCK - 1) // BLOCK):
            hdr = ("%s block %d\n" % (seed, b)).encode()
            out += hdr + body[:BLOCK - len(hdr)]
        return bytes(out[:size])
    sys.exit("unknown mode " + mode)
def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)
def cmd_gen(size, seed, mode):
    sys.stdout.buffer.write(gen(mode, parse_size(size), seed))
def cmd_files(d, prefix, count, lo, hi, seed, mode):
    count, lo, hi = int(count), parse_size(lo), parse_size(hi)
    rnd = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        size = int(math.exp(rnd.uniform(math.log(max(lo, 1)), math.log(max(hi, 1)))))
        m = mode
        if mode == "mix":
            m = "text" if i % 10 == 0 else "pattern"
        with open(os.path.join(d, "%s-%05d" % (prefix, i)), "wb") as f:
            f.write(gen(m, size, "%s/%d" % (seed, i)))
def cmd_tiny(d, prefix, count, seed):
    """tiny DIR PREFIX COUNT SEED: COUNT files of 8..40 bytes (inline)."""
    os.makedirs(d, exist_ok=True)
    for i in range(int(count)):
        with open(os.path.join(d, "%s-%05d" % (prefix, i)), "wb") as f:
            f.write(("%s %d\n" % (seed, i)).encode() * (1 + i % 3))
def cmd_clone(src, soff, dst, doff, length):
    FICLONERANGE = 0x4020940D
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.ioctl(dfd, FICLONERANGE, struct.pack("qQQQ", sfd, parse_size(soff), parse_size(length), parse_size(doff)))
    os.close(sfd); os.close(dfd)
def cmd_sparsify(img, chunkdump, extentdump, nodesize):
    """sparsify IMG CHUNKDUMP EXTENTDUMP NODESIZE: punch holes in IMG (one device, SINGLE/DUP
    chunks only) everywhere except the first MiB, the superblock mirror at 64 MiB and the
    physical copies of every EXTENT_ITEM / METADATA_ITEM of the extent tree dump.  For
    copies taken from a live kernel that could not be trimmed (stale tree blocks)."""
    import ctypes, re
    nodesize = int(nodesize)
    chunks = []   # (logical, length, [physical...])
    cur = None
    for line in open(chunkdump):
        m = re.search(r"key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)", line)
        if m:
            cur = [int(m.group(1)), 0, [], ""]; chunks.append(cur); continue
        if cur is None:
            continue
        m = re.search(r"^\s+length (\d+) owner \d+ stripe_len \d+ type (\S+)", line)
        if m:
            cur[1] = int(m.group(1)); cur[3] = m.group(2); continue
        m = re.search(r"^\s+stripe \d+ devid (\d+) offset (\d+)", line)
        if m:
            cur[2].append(int(m.group(2)))
    for c in chunks:
        if any(p in c[3] for p in ("RAID", "raid")):
            sys.exit("sparsify: profile %s not supported" % c[3])
    keep = [(0, 1 << 20), (64 << 20, (64 << 20) + 4096)]
    n = 0
    for line in open(extentdump):
        m = re.search(r"key \((\d+) (EXTENT_ITEM|METADATA_ITEM) (\d+)\)", line)
        if not m:
            continue
        lo = int(m.group(1)); ln = int(m.group(3)) if m.group(2) == "EXTENT_ITEM" else nodesize
        for c in chunks:
            if c[0] <= lo < c[0] + c[1]:
                for p in c[2]:
                    keep.append((p + lo - c[0], p + lo - c[0] + ln))
                n += 1
                break
        else:
            sys.exit("sparsify: extent %d not in any chunk" % lo)
    keep.sort()
    size = os.path.getsize(img)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fd = os.open(img, os.O_RDWR)
    pos, punched = 0, 0
    def punch(a, b):
        nonlocal punched
        a = (a + 4095) // 4096 * 4096; b = b // 4096 * 4096
        if b > a:
            if libc.fallocate(fd, 3, a, b - a) != 0:
                sys.exit("fallocate failed: errno %d" % ctypes.get_errno())
            punched += b - a
    for a, b in keep:
        if a > pos:
            punch(pos, a)
        pos = max(pos, b)
    if pos < size:
        punch(pos, size)
    os.close(fd)
    print("sparsify: %d extents kept, %d MiB punched" % (n, punched >> 20), file=sys.stderr)

cmds = {"gen": cmd_gen, "files": cmd_files, "tiny": cmd_tiny, "clone": cmd_clone,
        "sparsify": cmd_sparsify}
cmds[sys.argv[1]](*sys.argv[2:])
PYEOF
fx() { python3 "$FX" "$@"; }

# populate DIR SEED: the common "ordinary use" content: a few hundred small files, some
# 100 KiB files, a subvolume, a reflink, a snapshot modified afterwards.
populate() {
    local M=$1 s=$2 f
    fx files "$M/small" f 300 1 3000 "$s/small" mix
    fx files "$M/medium" m 20 100K 100K "$s/medium" pattern
    mkdir -p "$M/big"
    fx gen 2M "$s/big" pattern >"$M/big/big-0"
    if [[ ${NOREFLINK:-} ]]; then
        cp "$M/big/big-0" "$M/big/big-0.copy"
    else
        cp --reflink=always "$M/big/big-0" "$M/big/big-0.reflink"
        fx clone "$M/medium/m-00001" 0 "$M/big/partial-clone" 0 64K
    fi
    btrfs subvolume create "$M/sv" >/dev/null
    fx files "$M/sv" v 100 1 30K "$s/sv" mix
    [[ ${NOREFLINK:-} ]] || cp --reflink=always "$M/medium/m-00002" "$M/sv/from-top.reflink"
    sync
    btrfs subvolume snapshot "$M/sv" "$M/sv-snap" >/dev/null
    rm -f "$M"/sv/v-*3
    for f in "$M"/sv/v-*[05]; do fx gen 2K "$s/append/${f##*/}" text >>"$f"; done
    fx files "$M/sv-snap/new" n 30 1 8K "$s/snapnew" pattern
}

SUMMARY=()
summ() { SUMMARY+=("$(printf '%-28s %s' "$1" "$2")"); }

btrfs device scan --forget >/dev/null 2>&1 || true

# UUIDs (fsids) of this script
U_DEF=5a1e0101-b7f5-4c3e-9d2a-000000000101
U_SQ=5a1e0102-b7f5-4c3e-9d2a-000000000102
U_Q=5a1e0103-b7f5-4c3e-9d2a-000000000103
U_RST=5a1e0104-b7f5-4c3e-9d2a-000000000104
U_ZONED=5a1e0105-b7f5-4c3e-9d2a-000000000105
U_CONV=5a1e0106-b7f5-4c3e-9d2a-000000000106
U_SEED=5a1e0107-b7f5-4c3e-9d2a-000000000107
U_HALF=5a1e0108-b7f5-4c3e-9d2a-000000000108
U_RELOC=5a1e0109-b7f5-4c3e-9d2a-000000000109
U_BGT=5a1e010a-b7f5-4c3e-9d2a-00000000010a
U_CSUM=5a1e010b-b7f5-4c3e-9d2a-00000000010b
U_CSUMM=5a1e010c-b7f5-4c3e-9d2a-00000000010c
U_KQ=5a1e010d-b7f5-4c3e-9d2a-00000000010d
U_KSQ=5a1e010e-b7f5-4c3e-9d2a-00000000010e
U_KCX=5a1e010f-b7f5-4c3e-9d2a-00000000010f
U_KCS=5a1e0110-b7f5-4c3e-9d2a-000000000110
U_KCB=5a1e0111-b7f5-4c3e-9d2a-000000000111
U_SC1=5a1e0112-b7f5-4c3e-9d2a-000000000112

# =======================================================================================
# 1. mkfs619-defaults: btrfs-progs 6.19 mkfs defaults (block-group-tree, free-space-tree,
#    no-holes, skinny-metadata, extref), then kernel writes.
# =======================================================================================
build_mkfs619_defaults() {
    local name=mkfs619-defaults img="$WORK/mkfs619-defaults.img" M="$WORK/mnt-defaults" dev sb
    log "$name"
    new_image "$img" 192M
    $B619/mkfs.btrfs -q -f -U "$U_DEF" "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    populate "$M" defaults
    trim "$M"; do_umount "$M"; detach "$dev"
    sb_bit "$img" compat_ro_flags 3 || die "$name: no BLOCK_GROUP_TREE flag"
    [[ $(dump_tree -t 11 "$img" | count 'BLOCK_GROUP_ITEM') -gt 0 ]] || die "$name: block group tree empty"
    [[ $(dump_tree -t 2 "$img" | count 'BLOCK_GROUP_ITEM') -eq 0 ]] || die "$name: block group items in the extent tree"
    check_both "$img" "$name"
    store "$img" "$name.img"
    summ "$name" "BLOCK_GROUP_TREE compat_ro flag, block groups in tree 11; checks pass"
}

# =======================================================================================
# 2. mkfs619-squota / mkfs619-quota
# =======================================================================================
build_mkfs619_squota() {
    local name=mkfs619-squota img="$WORK/mkfs619-squota.img" M="$WORK/mnt-squota" dev sb q
    log "$name"
    new_image "$img" 192M
    $B619/mkfs.btrfs -q -f -U "$U_SQ" -O squota "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    populate "$M" squota
    cp --reflink=always "$M/big/big-0" "$M/sv-snap/big-0.reflink"
    sync
    btrfs qgroup show "$M" >&2 || true
    trim "$M"; do_umount "$M"; detach "$dev"
    sb_bit "$img" incompat_flags 16 || die "$name: no SIMPLE_QUOTA incompat flag"
    q=$(dump_tree -t 8 "$img")
    grep -q 'QGROUP_STATUS' <<<"$q" || die "$name: no quota status item"
    [[ $(count 'QGROUP_INFO' <<<"$q") -ge 3 ]] || die "$name: fewer than 3 qgroup info items"
    grep -q 'SIMPLE' <<<"$q" || echo "note: quota status does not print SIMPLE" >&2
    grep -A2 QGROUP_STATUS <<<"$q" >&2
    check_both "$img" "$name" opt62
    store "$img" "$name.img"
    summ "$name" "SIMPLE_QUOTA incompat flag, quota tree with status + >=3 qgroup infos; checks pass"
}

build_mkfs619_quota() {
    local name=mkfs619-quota img="$WORK/mkfs619-quota.img" M="$WORK/mnt-quota" dev q
    log "$name"
    new_image "$img" 192M
    $B619/mkfs.btrfs -q -f -U "$U_Q" -O quota "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    populate "$M" quota
    btrfs qgroup create 1/100 "$M"
    btrfs qgroup assign --no-rescan 0/256 1/100 "$M" 2>/dev/null || btrfs qgroup assign 0/256 1/100 "$M" || true
    btrfs qgroup assign --no-rescan 0/257 1/100 "$M" 2>/dev/null || btrfs qgroup assign 0/257 1/100 "$M" || true
    sync
    btrfs quota rescan -w "$M" >&2
    sync
    btrfs qgroup show -pcre "$M" >&2 || true
    trim "$M"; do_umount "$M"; detach "$dev"
    q=$(dump_tree -t 8 "$img")
    grep -A2 QGROUP_STATUS <<<"$q" >&2
    grep -q 'QGROUP_STATUS' <<<"$q" || die "$name: no quota status item"
    grep -A1 QGROUP_STATUS <<<"$q" | grep -q INCONSISTENT && die "$name: qgroups INCONSISTENT"
    [[ $(count 'QGROUP_RELATION' <<<"$q") -ge 4 ]] || die "$name: fewer than 4 qgroup relation items"
    grep -q 'QGROUP_INFO 1/100\|(281474976710756 QGROUP_INFO' <<<"$q" || grep -q 'QGROUP_INFO' <<<"$q" || die "$name: no qgroup info"
    check_both "$img" "$name"
    store "$img" "$name.img"
    summ "$name" "regular qgroups, 1/100 with two members, status consistent; checks pass"
}

# =======================================================================================
# 3. mkfs619-rst-dev1/dev2: -O raid-stripe-tree, two devices, -d raid1 -m raid1
# =======================================================================================
build_mkfs619_rst() {
    local name=mkfs619-rst img1="$WORK/mkfs619-rst-dev1.img" img2="$WORK/mkfs619-rst-dev2.img"
    local M="$WORK/mnt-rst" d1 d2 mounted=no n
    log "$name"
    new_image "$img1" 160M; new_image "$img2" 160M
    attach "$img1"; d1=$LOOPDEV
    attach "$img2"; d2=$LOOPDEV
    # (--rootdir would let mkfs write data extents, but it is limited to one device)
    $B619/mkfs.btrfs -q -f -U "$U_RST" -O raid-stripe-tree -d raid1 -m raid1 "$d1" "$d2"
    btrfs device scan "$d1" "$d2" >/dev/null
    if do_mount "$d1" "$M" 2>"$WORK/rst.mount"; then
        mounted=yes
        # the kernel may refuse reflinks on a raid-stripe-tree filesystem (EOPNOTSUPP)
        echo probe >"$M/probe-src"
        if cp --reflink=always "$M/probe-src" "$M/probe" 2>/dev/null; then rm -f "$M/probe"*; else
            echo "note: reflink not supported on this RST filesystem; populating without" >&2
            rm -f "$M/probe"*; NOREFLINK=1
        fi
        populate "$M" rst
        NOREFLINK=
        trim "$M"; do_umount "$M"
    else
        echo "note: kernel $(uname -r) cannot mount raid-stripe-tree:" >&2
        dmesg | grep -i 'incompat' | tail -1 >&2 || true
    fi
    btrfs device scan "$d1" "$d2" >/dev/null
    sb_bit "$img1" incompat_flags 14 || die "$name: no RAID_STRIPE_TREE incompat flag"
    n=$(dump_tree -t 12 "$d1" | count 'RAID_STRIPE')
    echo "raid stripe tree items: $n (kernel writes: $mounted)" >&2
    [[ $n -ge 1 ]] || die "$name: no RAID_STRIPE items"
    [[ $mounted == no || $n -ge 10 ]] || die "$name: fewer than 10 RAID_STRIPE items after kernel writes"
    check_both "$d1" "$name" opt62
    detach "$d1"; detach "$d2"
    store "$img1" "$name-dev1.img"; store "$img2" "$name-dev2.img"
    summ "$name-dev1/2" "RAID_STRIPE_TREE incompat flag; $n stripe items; kernel writes: $mounted"
}

# (A one-device "-O raid-stripe-tree -d dup -m dup --rootdir DIR" variant fails in mkfs
#  6.19 itself: "Couldn't map the block ..." / "failed to add file extents": not made.)

# =======================================================================================
# 4. mkfs619-zoned: -O zoned on a 4 GiB sparse regular file (emulated zones).  The kernel
#    cannot mount it on a loop device (not a zoned block device), so mkfs only; files are
#    added with --rootdir if this mkfs accepts it for zoned.
# =======================================================================================
build_mkfs619_zoned() {
    local name=mkfs619-zoned img="$WORK/mkfs619-zoned.img" R="$WORK/zoned-root" rootdir=no
    log "$name"
    rm -rf "$R"; mkdir -p "$R"
    fx files "$R/small" z 100 1 3000 zoned/small mix
    fx files "$R/medium" zm 5 100K 100K zoned/medium pattern
    new_image "$img" 4G
    if $B619/mkfs.btrfs -q -f -U "$U_ZONED" -O zoned --rootdir "$R" "$img" 2>"$WORK/zoned.mkfs"; then
        rootdir=yes
    else
        echo "note: mkfs -O zoned --rootdir failed: $(cat "$WORK/zoned.mkfs")" >&2
        new_image "$img" 4G
        $B619/mkfs.btrfs -q -f -U "$U_ZONED" -O zoned "$img"
    fi
    sb_bit "$img" incompat_flags 12 || die "$name: no ZONED incompat flag"
    dump_super "$img" | grep -i 'zone\|sectorsize\|nodesize' >&2 || true
    check_both "$img" "$name" opt62
    store "$img" "$name.img"
    summ "$name" "ZONED incompat flag (4 GiB, emulated zones); --rootdir files: $rootdir"
}

# =======================================================================================
# 5. metadumps: btrfs-image -c9 of committed kernel fixtures (testdata/) with 6.2 and
#    6.19; the dump files themselves (NAME.metadump-62 / -619) and the images restored
#    by the same version (NAME.restored-62.img.gz / -619; a multi-device set restored
#    with -m onto as many files: NAME.restored-62-devN.img.gz).  A failing dump or
#    restore is reported (and listed in the summary), not fatal; a restore that succeeds
#    must pass both checks unless noted.
# =======================================================================================
# md_restore BIN V BASE DUMP NDEV: btrfs-image -r (NDEV=1) or -r -m onto NDEV loop devices
md_restore() {
    local bin=$1 v=$2 base=$3 dump=$4 n=$5 i rc=0 tag out c62 c619 tgts=() rdevs=() d
    if [[ $n -eq 1 ]]; then
        tag=restored-$v; tgts=("$WORK/$base.$tag.img"); rm -f "${tgts[0]}"
        "$bin/btrfs-image" -r "$dump" "${tgts[0]}" >"$WORK/$base.$tag.log" 2>&1 || rc=$?
        rdevs=("${tgts[0]}")
    else
        tag=restored-m-$v
        for ((i = 1; i <= n; i++)); do
            tgts+=("$WORK/$base.$tag-dev$i.img"); new_image "${tgts[i-1]}" "$(stat -c %s "$WORK/md-$base-$i.img")"
            attach "${tgts[i-1]}"; rdevs+=("$LOOPDEV")
        done
        "$bin/btrfs-image" -r -m "$dump" "${rdevs[@]}" >"$WORK/$base.$tag.log" 2>&1 || rc=$?
        btrfs device scan "${rdevs[@]}" >/dev/null 2>&1 || true
    fi
    if [[ $rc -ne 0 ]]; then
        tail -5 "$WORK/$base.$tag.log" >&2
        summ "$base.$tag" "FAILED: btrfs-image -r${tgts[1]:+ -m} ($v) exited $rc: $(grep -m1 -i error "$WORK/$base.$tag.log")"
        for d in "${rdevs[@]}"; do [[ -b $d ]] && detach "$d"; done
        return 0
    fi
    c62=$(check_rc $B62/btrfs "${rdevs[0]}" "$WORK/$base.$tag.check62")
    c619=$(check_rc $B619/btrfs "${rdevs[0]}" "$WORK/$base.$tag.check619")
    echo "$base.$tag: check 6.2 exit $c62, 6.19 exit $c619" >&2
    for d in "${rdevs[@]}"; do [[ -b $d ]] && detach "$d"; done
    if [[ $n -eq 1 ]]; then
        store "${tgts[0]}" "$base.$tag.img"
    else
        for ((i = 1; i <= n; i++)); do store "${tgts[i-1]}" "$base.$tag-dev$i.img"; done
    fi
    rm -f "${tgts[@]}"
    summ "$base.$tag" "restore ok; check of restore: 6.2 rc=$c62, 6.19 rc=$c619"
}
MD_SETS=("kernel-snapshots:1" "kernel-logtree:1" "kernel-raid0:2" "kernel-raid1:2" "kernel-raid10:4" "kernel-raid1c3:3" "kernel-raid5:3" "kernel-raid6:4")
build_metadumps() {
    local spec base ndev i v bin devs files dump rc tgt tgts
    for spec in "${MD_SETS[@]}"; do
        base=${spec%%:*}; ndev=${spec##*:}
        log "metadump $base"
        devs=(); files=()
        for ((i = 1; i <= ndev; i++)); do
            local src=$REPO_DIR/testdata/$base.img.gz
            [[ $ndev -gt 1 ]] && src=$REPO_DIR/testdata/$base-dev$i.img.gz
            [[ -f $src ]] || die "missing fixture $src"
            gzip -dc "$src" >"$WORK/md-$base-$i.img"
            files+=("$WORK/md-$base-$i.img")
        done
        if [[ $ndev -gt 1 ]]; then
            # the fsid must not be registered by anyone else right now
            local fsid
            fsid=$(dump_super "${files[0]}" | awk '$1 == "fsid" { print $2 }')
            if blkid -t UUID="$fsid" -o device 2>/dev/null | grep -q .; then
                die "fsid $fsid of $base is in use on this machine (another loop device)"
            fi
            for f in "${files[@]}"; do attach "$f"; devs+=("$LOOPDEV"); done
            btrfs device scan "${devs[@]}" >/dev/null
        else
            devs=("${files[0]}")
        fi
        for v in 62 619; do
            bin=$B62; [[ $v == 619 ]] && bin=$B619
            dump="$WORK/$base.metadump-$v"
            rc=0
            "$bin/btrfs-image" -c9 "${devs[0]}" "$dump" >"$WORK/$base.image-$v.log" 2>&1 || rc=$?
            if [[ $rc -ne 0 || ! -s $dump ]]; then
                tail -5 "$WORK/$base.image-$v.log" >&2
                summ "$base.metadump-$v" "FAILED: btrfs-image $v exited $rc"
                continue
            fi
            store_plain "$dump" "$base.metadump-$v"
            summ "$base.metadump-$v" "dump $(stat -c %s "$dump") bytes"
            # restore with the same version, onto one file (a multi-device dump is then
            # turned into a one-device filesystem by btrfs-image)
            md_restore "$bin" "$v" "$base" "$dump" 1
            # multi-device: also restore with -m onto as many loop devices; the source
            # devices (same fsid) are detached meanwhile
            if [[ $ndev -gt 1 ]]; then
                for d in "${devs[@]}"; do detach "$d"; done
                md_restore "$bin" "$v" "$base" "$dump" "$ndev"
                devs=()
                for f in "${files[@]}"; do attach "$f"; devs+=("$LOOPDEV"); done
                btrfs device scan "${devs[@]}" >/dev/null
            fi
        done
        if [[ $ndev -gt 1 ]]; then for d in "${devs[@]}"; do detach "$d"; done; fi
        rm -f "${files[@]}" "$WORK"/*.restored-*.img
    done
}

# =======================================================================================
# 6. convert-ext4: mkfs.ext4 -d DIR on 256 MiB, btrfs-convert (6.2), then kernel writes
# =======================================================================================
build_convert_ext4() {
    local name=convert-ext4 img="$WORK/convert-ext4.img" R="$WORK/ext4-root" M="$WORK/mnt-conv" dev
    log "$name"
    rm -rf "$R"; mkdir -p "$R"
    fx files "$R/small" e 200 1 3000 ext4/small mix
    fx files "$R/medium" em 20 100K 100K ext4/medium pattern
    fx gen 3M ext4/big pattern >"$R/big"
    mkdir "$R/dir"; ln -s ../big "$R/dir/link"; ln "$R/big" "$R/dir/hardlink"
    truncate -s 8M "$R/sparse"; fx gen 64K ext4/sparse pattern | dd of="$R/sparse" bs=4K seek=512 conv=notrunc status=none
    new_image "$img" 256M
    mkfs.ext4 -q -F -b 4096 -U 5a1e01e4-b7f5-4c3e-9d2a-0000000001e4 -E root_owner=0:0 -d "$R" "$img"
    $B62/btrfs-convert --no-progress --uuid "$U_CONV" "$img" >&2
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    fx files "$M/after-convert" a 50 1 20K ext4/after mix
    fx gen 64K ext4/ow pattern | dd of="$M/big" bs=64K seek=2 conv=notrunc status=none
    rm -f "$M"/small/e-*7
    trim "$M"; do_umount "$M"; detach "$dev"
    dump_tree -t 1 "$img" | grep -q 'name: ext2_saved\|ext2_saved' || die "$name: no ext2_saved subvolume"
    check_both "$img" "$name"
    store "$img" "$name.img"
    summ "$name" "btrfs-convert 6.2 from ext4 ($(mke2fs -V 2>&1 | head -1 | awk '{print $2}')), ext2_saved subvolume kept, kernel writes after; checks pass"
}

# =======================================================================================
# 7. seed-sprout-seed / seed-sprout-sprout
# =======================================================================================
build_seed_sprout() {
    local name=seed-sprout s1="$WORK/seed-sprout-seed.img" s2="$WORK/seed-sprout-sprout.img"
    local M="$WORK/mnt-seed" d1 d2 fs1 fs2
    log "$name"
    new_image "$s1" 128M; new_image "$s2" 128M
    /sbin/mkfs.btrfs -q -f -U "$U_SEED" "$s1"
    attach "$s1"; d1=$LOOPDEV
    do_mount "$d1" "$M"
    fx files "$M/seed-files" s 150 1 20K seed/files mix
    fx gen 1M seed/big pattern >"$M/seed-big"
    btrfs subvolume create "$M/sv" >/dev/null
    fx files "$M/sv" v 30 1 8K seed/sv mix
    trim "$M"; do_umount "$M"; detach "$d1"
    $B62/btrfstune -S 1 "$s1"
    attach "$s1"; d1=$LOOPDEV
    do_mount "$d1" "$M"                   # a seed device mounts read-only
    attach "$s2"; d2=$LOOPDEV
    btrfs device add -f "$d2" "$M" >&2
    mount -o remount,rw "$M"
    fx files "$M/sprout-files" p 100 1 20K sprout/files mix
    fx gen 64K sprout/ow pattern | dd of="$M/seed-big" bs=64K seek=3 conv=notrunc status=none
    rm -f "$M"/seed-files/s-*5
    fx files "$M/sv/new" n 20 1 4K sprout/sv pattern
    sync
    trim "$M"; do_umount "$M"
    btrfs device scan "$d1" "$d2" >/dev/null
    fs1=$(dump_super "$s1" | awk '$1 == "fsid" { print $2 }')
    fs2=$(dump_super "$s2" | awk '$1 == "fsid" { print $2 }')
    echo "seed fsid $fs1, sprout fsid $fs2" >&2
    sb_bit "$s1" flags 32 || die "$name: seed superblock lacks the SEEDING flag"
    [[ $fs1 != "$fs2" ]] || die "$name: seed and sprout have the same fsid"
    dump_tree -t 3 "$d2" | grep -q "fsid $fs1" || die "$name: sprout chunk tree has no dev item of the seed fsid"
    check_both "$d2" "$name" fst62
    detach "$d2"; detach "$d1"
    store "$s1" "seed-sprout-seed.img"; store "$s2" "seed-sprout-sprout.img"
    summ "seed-sprout-seed/sprout" "seed fsid $fs1 (SEEDING flag), sprout fsid $fs2; checks of the sprout pass"
}

# capture_live IMG OUT: copy the backing file of a mounted filesystem without stopping it.
# The two superblock copies in range (64 KiB, 64 MiB) are read FIRST and written back into
# the copy afterwards: the trees they reference are not overwritten before the second
# commit after that, and copying a 256 MiB file from the page cache takes well under that.
# The result is validated by the caller (btrfs check 6.2 and 6.19).
capture_live() {
    local img=$1 out=$2
    dd if="$img" of="$WORK/sb0" bs=4K skip=16 count=1 status=none
    dd if="$img" of="$WORK/sb1" bs=4K skip=16384 count=1 status=none 2>/dev/null || true
    rm -f "$out"
    cp --sparse=always "$img" "$out"
    dd if="$WORK/sb0" of="$out" bs=4K seek=16 conv=notrunc status=none
    [[ -s $WORK/sb1 ]] && dd if="$WORK/sb1" of="$out" bs=4K seek=16384 conv=notrunc status=none
    return 0
}

# sparsify IMG: punch out everything the extent tree does not reference (one device, no
# log tree); see fx.py sparsify.  Replaces the fstrim a live copy could not have.
sparsify() {
    local img=$1 ns lr
    lr=$(dump_super "$img" | awk '$1 == "log_root" { print $2 }')
    [[ ${lr:-0} -eq 0 ]] || { echo "sparsify: $img has a log tree, left as is" >&2; return 0; }
    ns=$(dump_super "$img" | awk '$1 == "nodesize" { print $2 }')
    dump_tree -t 3 "$img" >"$WORK/sparsify.chunks"
    dump_tree -t 2 "$img" >"$WORK/sparsify.extents"
    fx sparsify "$img" "$WORK/sparsify.chunks" "$WORK/sparsify.extents" "$ns"
}

# drop_progress_keys IMG: "objectid drop_key_objectid drop_level" of every ROOT_ITEM whose
# drop_progress objectid is not 0
drop_progress_keys() {
    dump_tree -t 1 "$1" | awk '
        /item [0-9]+ key \([0-9-]+ ROOT_ITEM/ { id = $4; sub(/^\(/, "", id) }
        /drop_progress key \(/ { k = $3; sub(/^\(/, "", k); if (k != "0") print id, k, $NF }'
}

# =======================================================================================
# 8. kernel-halfdropped: a ROOT_ITEM with a non-zero drop_progress (snapshot deletion
#    caught half way).  mkfs 6.2 --nodesize 4096 -m single (size of the .gz); 60000 tiny
#    (inline) files in a subvolume,
#    snapshot, half of them changed, snapshot deleted; the backing file is copied while
#    the cleaner thread drops it (fsfreeze, else a live copy), at several delays.
# =======================================================================================
build_kernel_halfdropped() {
    local name=kernel-halfdropped img="$WORK/halfdropped.img" base="$WORK/halfdropped-base.img"
    local copy="$WORK/halfdropped-copy.img" M="$WORK/mnt-half" dev delay mode found="" keys i
    log "$name: base filesystem"
    new_image "$base" 256M
    /sbin/mkfs.btrfs -q -f -U "$U_HALF" --nodesize 4096 -m single "$base"
    attach "$base"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    btrfs subvolume create "$M/sv" >/dev/null
    for i in 0 1 2 3 4 5; do fx tiny "$M/sv/d$i" t 10000 "half/$i"; done
    sync
    btrfs subvolume snapshot "$M/sv" "$M/snap" >/dev/null
    # change half of the files (every second one in each directory): COWs every leaf
    python3 -c '
import os, sys
root = sys.argv[1]
for d in sorted(os.listdir(root)):
    for i in range(0, 10000, 2):
        with open(os.path.join(root, d, "t-%05d" % i), "ab") as f:
            f.write(b"changed\n")' "$M/sv"
    sync
    trim "$M"; do_umount "$M"; detach "$dev"
    for mode in freeze live; do
        for delay in 0 0.05 0.2 0.5 1; do
            log "$name: attempt $mode delay $delay"
            cp --sparse=always "$base" "$img"
            attach "$img"; dev=$LOOPDEV
            do_mount "$dev" "$M" -o commit=1
            btrfs subvolume delete "$M/snap" >/dev/null
            btrfs filesystem sync "$M"
            sleep "$delay"
            if [[ $mode == freeze ]]; then
                fsfreeze -f "$M"
                rm -f "$copy"; cp --sparse=always "$img" "$copy"
                fsfreeze -u "$M"
            else
                capture_live "$img" "$copy"
            fi
            do_umount "$M"; detach "$dev"
            keys=$(drop_progress_keys "$copy")
            echo "drop_progress: ${keys:-none}" >&2
            if [[ -n $keys ]]; then
                if [[ $(check_rc $B62/btrfs "$copy" "$WORK/half.c62") -eq 0 ]]; then found="$mode $delay"; break 2; fi
                echo "copy has drop_progress but 6.2 check fails:" >&2; grep -i error "$WORK/half.c62" | head -3 >&2
            fi
        done
    done
    [[ -n $found ]] || die "$name: no copy with a non-zero drop_progress"
    sparsify "$copy"
    check_both "$copy" "$name" fst62
    [[ -n $(drop_progress_keys "$copy") ]] || die "$name: drop_progress lost"
    store "$copy" "$name.img"
    summ "$name" "ROOT_ITEM drop_progress: $keys (captured by $found s); checks pass"
}

# =======================================================================================
# 9. kernel-reloc: ROOT_ITEMs of TREE_RELOC (-8) roots, i.e. a balance caught mid-way.
#    fsfreeze cannot catch it (the balance ioctl holds write access until it ends), so
#    the backing file is copied live (capture_live) in a loop while balances run, until a
#    copy holds TREE_RELOC roots and passes both checks.
# =======================================================================================
build_kernel_reloc() {
    local name=kernel-reloc img="$WORK/reloc.img" copy="$WORK/reloc-copy.img" M="$WORK/mnt-reloc"
    local dev i n nd found="" bpid deadline rl
    log "$name: base filesystem"
    new_image "$img" 256M
    /sbin/mkfs.btrfs -q -f -U "$U_RELOC" "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    btrfs subvolume create "$M/sv" >/dev/null
    for i in 0 1 2; do fx tiny "$M/sv/d$i" t 3000 "reloc/$i"; done
    fx files "$M/sv/data" m 30 8K 200K reloc/data pattern
    sync
    btrfs subvolume snapshot "$M/sv" "$M/snap1" >/dev/null
    python3 -c '
import os, sys
root = sys.argv[1]
for d in ("d0", "d1"):
    for i in range(0, 3000, 3):
        with open(os.path.join(root, d, "t-%05d" % i), "ab") as f:
            f.write(b"changed\n")' "$M/sv"
    btrfs subvolume snapshot -r "$M/sv" "$M/snap2" >/dev/null
    fx files "$M/top" f 200 1 3000 reloc/top mix
    sync
    trim "$M"
    deadline=$((SECONDS + ${RELOC_SECONDS:-900}))
    ( while :; do btrfs balance start --full-balance "$M" >/dev/null 2>&1 || true; done ) &
    bpid=$!; BGPIDS+=("$bpid")
    for ((i = 1; SECONDS < deadline; i++)); do
        sleep "0.$((RANDOM % 9 + 1))"
        capture_live "$img" "$copy"
        rl=$(dump_tree -t 1 "$copy" | grep -o 'key (TREE_RELOC ROOT_ITEM [0-9A-Z_-]*)' || true)
        n=$(count . <<<"$rl")
        nd=$(grep -c 'ROOT_ITEM \(18446744073709551607\|DATA_RELOC\)' <<<"$rl" || true)
        echo "attempt $i: $n TREE_RELOC root items ($nd for the data reloc tree)" >&2
        [[ $n -gt 0 ]] || continue
        if [[ $(check_rc $B62/btrfs "$copy" "$WORK/reloc.c62") -ne 0 ]]; then
            echo "  6.2 check fails: $(grep -m2 -i 'error\|wrong\|mismatch' "$WORK/reloc.c62" | tr '\n' ' ')" >&2; continue
        fi
        local fcheck=0
        ( check_both "$copy" reloc fst62 ) >/dev/null 2>&1 || fcheck=1
        if [[ $fcheck -ne 0 ]]; then echo "  6.19 check fails" >&2; continue; fi
        cp --sparse=always "$copy" "$WORK/reloc-best.img"
        found="$n reloc roots ($nd of the data reloc tree): $(tr '\n' ' ' <<<"$rl")"
        # one with reloc roots of both kinds (subvolume, data reloc tree) is preferred;
        # RELOC_WANT_DATA=1 keeps trying for it until the deadline
        [[ -z ${RELOC_WANT_DATA:-} || ($nd -gt 0 && $n -gt $nd) ]] && break
    done
    kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null || true
    BGPIDS=()
    btrfs balance cancel "$M" >/dev/null 2>&1 || true
    while btrfs balance status "$M" 2>/dev/null | grep -q running; do sleep 0.5; done
    do_umount "$M"; detach "$dev"
    [[ -n $found ]] || die "$name: no valid copy with TREE_RELOC roots in ${RELOC_SECONDS:-900} s"
    sparsify "$WORK/reloc-best.img"
    check_both "$WORK/reloc-best.img" "$name" fst62
    store "$WORK/reloc-best.img" "$name.img"
    summ "$name" "$found; checks pass"
}

# gdb_kill_at FUNC N CMD...: run CMD under gdb and kill it at the entry of the N-th call
# of FUNC (btrfs-progs 6.19 is built without error injection, but with symbols).  Each
# btrfs-progs transaction commit writes the superblock last, so killing at the entry of
# commit N leaves the state of commit N-1 on disk.
gdb_kill_at() {
    local func=$1 n=$2
    shift 2
    gdb -q -batch -ex "set pagination off" -ex "break $func" -ex "ignore 1 $((n - 1))" \
        -ex run -ex "info breakpoints" -ex kill --args "$@" >"$WORK/gdb.log" 2>&1 || true
    grep -q "already hit $n time" "$WORK/gdb.log" || { tail -20 "$WORK/gdb.log" >&2; die "gdb: $func was not called $n times"; }
}

# resumes IMG NAME ARGS...: the interrupted state is one btrfstune 6.19 can finish: on a copy,
# `btrfstune ARGS` completes and both checks pass afterwards
resumes() {
    local img=$1 name=$2 r="$WORK/resume.img"
    shift 2
    cp --sparse=always "$img" "$r"
    "$B619/btrfstune" "$@" "$r" >"$WORK/$name.resume" 2>&1 || { cat "$WORK/$name.resume" >&2; die "$name: btrfstune $* does not resume"; }
    check_ok $B619/btrfs "$r" "$WORK/$name.resume.c619"
    check_ok $B62/btrfs "$r" "$WORK/$name.resume.c62"
    rm -f "$r"
    echo "$name: btrfstune $* resumes and completes; both checks pass after it" >&2
}

# =======================================================================================
# 10. mkfs619-bgt-changing: btrfstune 6.19 --convert-to-block-group-tree killed at its
#     second commit: superblock flag CHANGING_BG_TREE (1<<38), block-group tree created,
#     block group items still in the extent tree.
#     mkfs619-csum-changing: btrfstune 6.19 --csum xxhash killed at its third commit:
#     flag CHANGING_DATA_CSUM (1<<39), the TEMPORARY_ITEM (-13) in the root tree and new
#     csum items under objectid CSUM_CHANGE (-13) for the first 2 MiB of data.
#     mkfs619-csum-changing-meta: the same killed in the middle of the in-place rewrite of
#     tree block checksums (killed before the 20th): flag CHANGING_META_CSUM (1<<40), tree blocks with crc32c and
#     with xxhash checksums.
# =======================================================================================
build_mkfs619_bgt_changing() {
    local name=mkfs619-bgt-changing img="$WORK/bgt.img" M="$WORK/mnt-bgt" dev nb ne
    log "$name"
    new_image "$img" 192M
    $B619/mkfs.btrfs -q -f -U "$U_BGT" -O ^block-group-tree "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    populate "$M" bgt
    trim "$M"; do_umount "$M"; detach "$dev"
    gdb_kill_at btrfs_commit_transaction 2 "$B619/btrfstune" --convert-to-block-group-tree "$img"
    sb_bit "$img" flags 38 || die "$name: no CHANGING_BG_TREE superblock flag"
    dump_tree -t 1 "$img" | grep -q 'key (BLOCK_GROUP_TREE ROOT_ITEM' || die "$name: no block group tree root"
    nb=$(dump_tree -t 11 "$img" | count 'BLOCK_GROUP_ITEM')
    ne=$(dump_tree -t 2 "$img" | count 'BLOCK_GROUP_ITEM')
    echo "block group items: $nb in the block-group tree, $ne in the extent tree" >&2
    [[ $ne -gt 0 ]] || die "$name: no block group items left in the extent tree"
    resumes "$img" "$name" --convert-to-block-group-tree
    printf '6.2 check: exit %s; 6.19 check: exit %s\n' "$(check_rc $B62/btrfs "$img" "$WORK/bgt.c62")" "$(check_rc $B619/btrfs "$img" "$WORK/bgt.c619")" >&2
    grep -i 'error\|warn' "$WORK/bgt.c62" "$WORK/bgt.c619" | head >&2 || true
    store "$img" "$name.img"
    summ "$name" "CHANGING_BG_TREE flag; block group items: $nb in tree 11, $ne in the extent tree (checks: not required)"
}

csum_base() {   # csum_base IMG UUID SEED: 6.19 mkfs + kernel writes incl. 8 MiB of data
    local img=$1 M="$WORK/mnt-csum" dev
    new_image "$img" 192M
    $B619/mkfs.btrfs -q -f -U "$2" "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    populate "$M" "$3"
    fx gen 8M "$3/csum-big" pattern >"$M/big/csum-big"
    trim "$M"; do_umount "$M"; detach "$dev"
}

build_mkfs619_csum_changing() {
    local name=mkfs619-csum-changing img="$WORK/csum.img" nc
    log "$name"
    csum_base "$img" "$U_CSUM" csum
    gdb_kill_at btrfs_commit_transaction 3 "$B619/btrfstune" --csum xxhash "$img"
    sb_bit "$img" flags 39 || die "$name: no CHANGING_DATA_CSUM superblock flag"
    dump_tree -t 1 "$img" | grep -q 'key (CSUM_CHANGE TEMPORARY_ITEM\|key (18446744073709551603 TEMPORARY_ITEM' || die "$name: no csum change item in the root tree"
    nc=$(dump_tree -t 7 "$img" | grep -c 'key (CSUM_CHANGE EXTENT_CSUM\|key (18446744073709551603 EXTENT_CSUM' || true)
    echo "csum items under -13: $nc" >&2
    [[ $nc -gt 0 ]] || die "$name: no csum items under objectid -13"
    resumes "$img" "$name" --csum xxhash
    printf '6.2 check: exit %s; 6.19 check: exit %s\n' "$(check_rc $B62/btrfs "$img" "$WORK/csum.c62")" "$(check_rc $B619/btrfs "$img" "$WORK/csum.c619")" >&2
    grep -i 'error\|warn' "$WORK/csum.c62" "$WORK/csum.c619" | head >&2 || true
    store "$img" "$name.img"
    summ "$name" "CHANGING_DATA_CSUM flag; $nc csum items under -13 (checks: not required)"
}

build_mkfs619_csum_changing_meta() {
    local name=mkfs619-csum-changing-meta img="$WORK/csum-meta.img"
    log "$name"
    csum_base "$img" "$U_CSUMM" csummeta
    # (a line breakpoint: rewrite_tree_block_csum is inlined into its loop)
    gdb_kill_at tune/change-csum.c:661 20 "$B619/btrfstune" --csum xxhash "$img"
    sb_bit "$img" flags 40 || die "$name: no CHANGING_META_CSUM superblock flag"
    resumes "$img" "$name" --csum xxhash
    printf '6.2 check: exit %s; 6.19 check: exit %s\n' "$(check_rc $B62/btrfs "$img" "$WORK/csumm.c62")" "$(check_rc $B619/btrfs "$img" "$WORK/csumm.c619")" >&2
    grep -i 'error\|warn' "$WORK/csumm.c62" "$WORK/csumm.c619" | head >&2 || true
    store "$img" "$name.img"
    summ "$name" "CHANGING_META_CSUM flag; 19 tree blocks rewritten with xxhash, the rest crc32c (checks: not required)"
}
#@@MORE@@

# =======================================================================================
# --survey: run btrfs-refcheck (text and --json) and `btrfs check --readonly` (6.2, 6.19)
# on every raw image of OUTDIR (and, with SURVEY_EXISTING=1, of testdata/), all devices
# of a set together; write OUTDIR/SURVEY.md.
# =======================================================================================
survey_set() {   # survey_set SECTION NAME FILE.gz...
    local section=$1 name=$2 f i rc62 rc619 rcours fsid devs=() raws=()
    shift 2
    for f in "$@"; do
        i=${#raws[@]}
        gzip -dc "$f" >"$WORK/sv-$i.img"
        raws+=("$WORK/sv-$i.img")
    done
    rcours=0
    dotnet "$REFCHECK" check "${raws[@]}" --json >"$WORK/sv.json" 2>"$WORK/sv.json.err" || rcours=$?
    dotnet "$REFCHECK" check "${raws[@]}" >"$WORK/sv.txt" 2>&1 || true
    if [[ ${#raws[@]} -gt 1 ]]; then
        fsid=$(dump_super "${raws[0]}" | awk '$1 == "fsid" { print $2 }')
        if blkid -t UUID="$fsid" -o device 2>/dev/null | grep -q .; then
            echo "fsid in use on this machine: btrfs check skipped" >"$WORK/sv.c62"; cp "$WORK/sv.c62" "$WORK/sv.c619"
            rc62=skipped; rc619=skipped
        else
            for f in "${raws[@]}"; do attach "$f"; devs+=("$LOOPDEV"); done
            btrfs device scan "${devs[@]}" >/dev/null 2>&1 || true
            rc62=$(check_rc $B62/btrfs "${devs[0]}" "$WORK/sv.c62")
            rc619=$(check_rc $B619/btrfs "${devs[0]}" "$WORK/sv.c619")
            for f in "${devs[@]}"; do detach "$f"; done
        fi
    else
        rc62=$(check_rc $B62/btrfs "${raws[0]}" "$WORK/sv.c62")
        rc619=$(check_rc $B619/btrfs "${raws[0]}" "$WORK/sv.c619")
    fi
    rm -f "${raws[@]}"
    python3 - "$section" "$name" "$rcours" "$rc62" "$rc619" "$WORK/sv.json" "$WORK/sv.c62" "$WORK/sv.c619" "$WORK/sv.txt" "$WORK/sv.json.err" >>"$WORK/survey.md" <<'PYEOF'
import json, re, sys
section, name, rc, rc62, rc619, js, c62, c619, txt, jerr = sys.argv[1:]
noise = re.compile(r"^(\[\d/\d\]|Opening filesystem|Checking filesystem on|UUID:|found \d+ bytes used|total |btree space waste|file data blocks|\s*referenced|cache and super generation|no error found|Scanning|checking |ERROR: cannot scan /dev/|WARNING: cannot read chunk root|Checking|\s*$)")
def errlines(path):
    out = [l.rstrip() for l in open(path, errors="replace") if not noise.match(l)]
    return out
try:
    d = json.load(open(js))
    codes = {}
    for f in d.get("findings", []):
        c = f.get("code") or f.get("Code") or "?"
        if c not in codes:
            codes[c] = [0, f.get("severity", ""), f.get("message") or json.dumps(f)[:300]]
        codes[c][0] += 1
    verdict = d.get("verdict", "?")
except Exception as e:
    codes, verdict = {}, "no JSON (%s): %s" % (e, open(jerr).read().strip()[:300])
print("### %s (%s)\n" % (name, section))
print("- btrfs-refcheck: exit %s, verdict %s%s" % (rc, verdict, "" if codes else ", no findings"))
for c, (n, sev, msg) in sorted(codes.items()):
    print("  - `%s` x%d (%s): %s" % (c, n, sev, msg.replace("\n", " ")[:400]))
for tag, r, p in (("6.2", rc62, c62), ("6.19", rc619, c619)):
    ls = errlines(p)
    print("- btrfs check --readonly %s: exit %s%s" % (tag, r, "" if ls else ", no error lines"))
    for l in ls[:10]:
        print("  - `%s`" % l.replace("`", "'"))
    if len(ls) > 10:
        print("  - ... %d more lines" % (len(ls) - 10))
print()
row = "| %s | %s | %s | %s | %s | %s |" % (name, section, rc, ", ".join("%s x%d" % (c, v[0]) for c, v in sorted(codes.items())) or "-", rc62, rc619)
open(sys.argv[6] + ".rows", "a").write(row + "\n")
PYEOF
    cat "$WORK/sv.json.rows" >>"$WORK/survey.rows" 2>/dev/null || true
    rm -f "$WORK/sv.json.rows"
    echo "survey: $name ours=$rcours 6.2=$rc62 6.19=$rc619" >&2
}

survey_dir() {   # survey_dir SECTION DIR
    local section=$1 dir=$2 f base sets=() s
    for f in "$dir"/*.img.gz; do
        base=${f##*/}; base=${base%.img.gz}; base=${base%-dev[0-9]}
        [[ " ${sets[*]-} " == *" $base "* ]] || sets+=("$base")
    done
    for s in "${sets[@]}"; do
        if [[ $s == *-sprout && -f $dir/${s%-sprout}-seed.img.gz ]]; then
            # a sprout is only complete with its seed device
            survey_set "$section" "$s + ${s%-sprout}-seed" "$dir/$s.img.gz" "$dir/${s%-sprout}-seed.img.gz"
        elif [[ -f $dir/$s.img.gz ]]; then survey_set "$section" "$s" "$dir/$s.img.gz"
        else survey_set "$section" "$s" $(ls "$dir/$s"-dev[0-9].img.gz | sort); fi
    done
}

survey() {
    REFCHECK=${REFCHECK:-$REPO_DIR/src/BtrfsRefcheck.Cli/bin/Release/net10.0/btrfs-refcheck.dll}
    if [[ ! -f $REFCHECK ]]; then
        (cd "$REPO_DIR" && dotnet build -c Release src/BtrfsRefcheck.Cli -v q >&2)
    fi
    : >"$WORK/survey.md"; : >"$WORK/survey.rows"
    survey_dir sources "$OUTDIR"
    [[ -n ${SURVEY_EXISTING:-} ]] && survey_dir testdata "$REPO_DIR/testdata"
    {
        echo "# Survey of testdata/sources (and testdata/) images"
        echo
        echo "Made by \`scripts/make-source-fixtures.sh --survey\` on $(date -u +%Y-%m-%d), kernel $(uname -r),"
        echo "btrfs-refcheck from $(cd "$REPO_DIR" && git rev-parse --short HEAD), btrfs-progs $($B62/btrfs --version | awk '{print $2}') (/usr/bin) and"
        echo "$($B619/btrfs --version | head -1 | awk '{print $2}') ($B619).  Every device of a set is passed together; btrfs check gets"
        echo "the first loop device after all were attached and scanned.  Error lines are the check's"
        echo "output without its progress and statistics lines.  Metadump files themselves are not"
        echo "surveyed (only raw images)."
        echo
        echo "| image | from | refcheck exit | refcheck codes | check 6.2 | check 6.19 |"
        echo "|---|---|---|---|---|---|"
        cat "$WORK/survey.rows"
        echo
        cat "$WORK/survey.md"
    } >"$OUTDIR/SURVEY.md"
    echo "wrote $OUTDIR/SURVEY.md" >&2
}

# =======================================================================================
# kernel-qgroups / kernel-squota: quotas enabled by the kernel on a mounted filesystem,
# nodesize 4096 so the subvolumes have interior nodes that snapshots share.
# =======================================================================================
# qgroup_content M SEED: subvolumes in level-1 qgroups under a level-2 one, snapshots
# (inheriting a qgroup), COW after the snapshots, reflinks across subvolumes.
qgroup_content() {
    local M=$1 s=$2 f inh1=(-i 1/1) inh2=(-i 1/2)
    [[ ${SIMPLE:-} ]] && { inh1=(); inh2=(); }
    btrfs subvolume create "${inh1[@]}" "$M/a" >/dev/null
    fx tiny "$M/a/t" t 3000 "$s/tiny"
    fx files "$M/a/m" m 20 100K 100K "$s/medium" pattern
    sync
    btrfs subvolume snapshot "${inh1[@]}" "$M/a" "$M/a-snap1" >/dev/null
    for f in "$M"/a/t/t-*7; do echo appended >>"$f"; done
    rm -f "$M"/a/t/t-*3
    btrfs subvolume create "${inh2[@]}" "$M/b" >/dev/null
    fx files "$M/b" v 100 1 30K "$s/b" mix
    cp --reflink=always "$M/a/m/m-00001" "$M/b/from-a.reflink"
    sync
    btrfs subvolume snapshot "${inh2[@]}" "$M/b" "$M/b-snap" >/dev/null
    btrfs subvolume snapshot -r "$M/a-snap1" "$M/a-snap2" >/dev/null
    fx files "$M/b-snap/new" n 30 1 8K "$s/bnew" pattern
    cp --reflink=always "$M/a/m/m-00002" "$M/a-snap1/m-00002.reflink"
    populate "$M" "$s"
    sync
}

build_kernel_qgroups() {
    local name=kernel-qgroups img="$WORK/kernel-qgroups.img" M="$WORK/mnt-kq" dev q
    log "$name"
    new_image "$img" 256M
    $B619/mkfs.btrfs -q -f -U "$U_KQ" --nodesize 4096 "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    btrfs quota enable "$M"
    btrfs qgroup create 1/1 "$M"; btrfs qgroup create 1/2 "$M"; btrfs qgroup create 2/1 "$M"
    btrfs qgroup assign 1/1 2/1 "$M" >&2; btrfs qgroup assign 1/2 2/1 "$M" >&2
    qgroup_content "$M" kq
    q=$(dump_tree -t 8 "$dev")
    if grep -A1 QGROUP_STATUS <<<"$q" | grep -q INCONSISTENT; then
        echo "$name: status INCONSISTENT after the writes; rescanning" >&2
        btrfs quota rescan -w "$M" >&2; sync
    fi
    btrfs qgroup show -pcre "$M" >&2 || true
    trim "$M"; do_umount "$M"; detach "$dev"
    q=$(dump_tree -t 8 "$img")
    grep -A1 QGROUP_STATUS <<<"$q" | grep -q INCONSISTENT && die "$name: qgroups INCONSISTENT"
    [[ $(count 'QGROUP_RELATION' <<<"$q") -ge 8 ]] || die "$name: fewer than 8 qgroup relation items"
    [[ $(dump_tree -t 256 "$img" | count '^node ') -gt 0 ]] || die "$name: subvolume a has no interior node"
    check_both "$img" "$name"
    store "$img" "$name.img"
    summ "$name" "kernel-enabled qgroups, levels 0-2, snapshots sharing nodes, reflinks; consistent; checks pass"
}

build_kernel_squota() {
    local name=kernel-squota img="$WORK/kernel-squota.img" M="$WORK/mnt-ksq" dev q
    log "$name"
    new_image "$img" 256M
    $B619/mkfs.btrfs -q -f -U "$U_KSQ" --nodesize 4096 "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M"
    fx files "$M/before" p 50 1 20K ksq-before mix   # written before squota: enable_gen leaves them out
    sync
    $B619/btrfs quota enable --simple "$M"
    SIMPLE=1 qgroup_content "$M" ksq
    btrfs qgroup show -pcre "$M" >&2 || true
    trim "$M"; do_umount "$M"; detach "$dev"
    sb_bit "$img" incompat_flags 16 || die "$name: no SIMPLE_QUOTA incompat flag"
    q=$(dump_tree -t 8 "$img")
    grep -A1 QGROUP_STATUS <<<"$q" >&2
    grep -A1 QGROUP_STATUS <<<"$q" | grep -q 'enable_gen [1-9]' || echo "note: no enable_gen printed" >&2
    check_both "$img" "$name" opt62
    store "$img" "$name.img"
    summ "$name" "squota enabled by the kernel after data was written (enable_gen > 1); checks pass"
}

# =======================================================================================
# kernel-csum-xxhash / -sha256 / -blake2: mkfs 6.19 --csum TYPE, data written by the kernel
# with compression on (zstd, lzo, zlib), for --check-data-csum on every checksum type.
# =======================================================================================
csum_type_image() {   # csum_type_image NAME UUID CSUM COMPRESS
    local name=$1 img="$WORK/$1.img" M="$WORK/mnt-$1" dev
    log "$name"
    new_image "$img" 128M
    $B619/mkfs.btrfs -q -f -U "$2" --csum "$3" "$img"
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M" -o "compress-force=$4"
    populate "$M" "$name"
    trim "$M"; do_umount "$M"; detach "$dev"
    dump_super "$img" | grep -q "csum_type.*$3" || die "$name: csum_type is not $3"
    [[ $(dump_tree -t 5 "$img" | grep -c 'compression [1-9]') -gt 0 ]] || die "$name: no compressed extent"
    check_both "$img" "$name"
    $B619/btrfs check --readonly --check-data-csum "$img" >"$WORK/$name.datacsum" 2>&1 || { tail "$WORK/$name.datacsum" >&2; die "$name: 6.19 --check-data-csum fails"; }
    store "$img" "$name.img"
    summ "$name" "csum $3, $4-compressed data by the kernel; checks (6.19 also --check-data-csum) pass"
}
build_kernel_csum_xxhash() { csum_type_image kernel-csum-xxhash "$U_KCX" xxhash zstd; }
build_kernel_csum_sha256() { csum_type_image kernel-csum-sha256 "$U_KCS" sha256 lzo; }
build_kernel_csum_blake2() { csum_type_image kernel-csum-blake2 "$U_KCB" blake2 zlib; }

# =======================================================================================
# kernel-spacecache-v1: mkfs 6.2 without the free-space tree, mounted -o space_cache=v1
# (kernel 6.18 still writes the v1 cache, with a deprecation warning). 2 GiB: the kernel
# writes no cache for a block group under 100 MiB (cache_save_setup). A fragmented data
# block group (every other 4 KiB file removed) makes the kernel use bitmaps.
# kernel-spacecache-v1-to-v2: the same image mounted once with -o space_cache=v2 (the
# kernel builds the free-space tree and removes every v1 inode and header).
# =======================================================================================
build_kernel_spacecache_v1() {
    local name=kernel-spacecache-v1 img="$WORK/kernel-spacecache-v1.img" M="$WORK/mnt-sc1" dev f n
    local name2=kernel-spacecache-v1-to-v2 img2="$WORK/kernel-spacecache-v1-to-v2.img"
    log "$name"
    new_image "$img" 2G
    /sbin/mkfs.btrfs -q -f -U "$U_SC1" -R ^free-space-tree "$img" >/dev/null 2>&1
    attach "$img"; dev=$LOOPDEV
    do_mount "$dev" "$M" -o space_cache=v1
    populate "$M" sc1
    fx files "$M/frag" r 4000 4K 4K sc1/frag pattern
    sync
    n=0
    for f in "$M"/frag/r-*; do (( n++ % 2 )) || rm -f "$f"; done
    sync
    fx files "$M/frag2" s 400 4K 12K sc1/frag2 pattern
    sync
    rm -f "$M"/frag2/s-*[13579]
    trim "$M"; do_umount "$M"; detach "$dev"
    [[ $(dump_super "$img" | awk '$1 == "compat_ro_flags" { print $2 }') == 0x0 ]] || die "$name: compat_ro flags set"
    [[ $(dump_super "$img" | awk '$1 == "cache_generation" { print $2 }') == $(dump_super "$img" | awk '$1 == "generation" { print $2 }') ]] ||
        die "$name: cache_generation is not the generation"
    [[ $(dump_tree -t 1 "$img" | count 'FREE_SPACE UNTYPED') -ge 2 ]] || die "$name: fewer than two v1 cache headers"
    dump_tree -t 1 "$img" | grep -q 'cache generation [0-9]* entries [0-9]* bitmaps [1-9]' || die "$name: no cache with bitmaps"
    check_both "$img" "$name"
    store "$img" "$name.img"
    summ "$name" "v1 space cache (extents and bitmaps) written by kernel 6.18; checks pass"

    log "$name2"
    cp --sparse=always "$img" "$img2"
    attach "$img2"; dev=$LOOPDEV
    do_mount "$dev" "$M" -o space_cache=v2
    fx files "$M/after" a 50 1 20K sc1/after mix
    trim "$M"; do_umount "$M"; detach "$dev"
    sb_bit "$img2" compat_ro_flags 0 && sb_bit "$img2" compat_ro_flags 1 || die "$name2: no FREE_SPACE_TREE(_VALID)"
    [[ $(dump_super "$img2" | awk '$1 == "cache_generation" { print $2 }') == 0 ]] || die "$name2: cache_generation not 0"
    [[ $(dump_tree -t 1 "$img2" | count 'FREE_SPACE UNTYPED') -eq 0 ]] || die "$name2: v1 cache headers left"
    check_both "$img2" "$name2"
    store "$img2" "$name2.img"
    summ "$name2" "v1 cache converted to the free-space tree by kernel 6.18; checks pass"
}

# =======================================================================================
if [[ -n $SURVEY ]]; then survey; exit 0; fi
START=$SECONDS
for a in "${ARGS[@]}"; do
    f=build_${a//-/_}
    declare -F "$f" >/dev/null || die "unknown image '$a' (known: ${ALL[*]})"
    "$f"
    btrfs device scan --forget >/dev/null 2>&1 || true
done
printf '\n%s\n' "${SUMMARY[@]}"
ls -l "$OUTDIR" >&2
echo "run time: $((SECONDS - START)) s" >&2
