#!/usr/bin/env python3
"""Page-cache control for scripts/bench.sh, on one image file.

  bench-cache.py warm IMG    read every metadata and system chunk once (one copy), 4 MiB preads
  bench-cache.py evict IMG   drop the image's pages from the page cache (posix_fadvise DONTNEED, as btrfs check does
                             itself when it opens and closes a device)
  bench-cache.py floor IMG   the I/O floor: warm once, then time three more reads; prints "median_seconds bytes"
"""
import os
import subprocess
import sys
import time


def metadata_ranges(img):
    dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "chunk", img],
                          capture_output=True, text=True, check=True).stdout
    ranges, cur = [], None
    for line in dump.splitlines():
        s = line.split()
        if "CHUNK_ITEM" in line and "key" in s:
            cur = {}
        elif cur is not None and s[:1] == ["length"]:
            cur["length"], cur["type"] = int(s[1]), s[7] if len(s) > 7 else ""
        elif cur is not None and s[:1] == ["stripe"] and "offset" in s:
            if "METADATA" in cur.get("type", "") or "SYSTEM" in cur.get("type", ""):
                ranges.append((int(s[s.index("offset") + 1]), cur["length"]))
            cur = None  # one copy: the first stripe
    return ranges


def read_all(img, ranges):
    total = 0
    fd = os.open(img, os.O_RDONLY)
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    for off, length in ranges:
        pos = off
        while pos < off + length:
            n = os.preadv(fd, [view[:min(len(buf), off + length - pos)]], pos)
            if n <= 0:
                break
            total += n
            pos += n
    os.close(fd)
    return total


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("warm", "evict", "floor"):
        sys.exit(__doc__)
    op, img = sys.argv[1], sys.argv[2]
    if op == "evict":
        fd = os.open(img, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        return
    ranges = metadata_ranges(img)
    read_all(img, ranges)
    if op == "floor":
        times = []
        for _ in range(3):
            t = time.perf_counter()
            total = read_all(img, ranges)
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"{times[1]:.3f} {total}")


try:
    main()
except subprocess.CalledProcessError as e:
    sys.exit(f"bench-cache: {sys.argv[2]}: 'btrfs inspect-internal dump-tree -t chunk' failed (exit {e.returncode}); not a btrfs image?")
except OSError as e:
    sys.exit(f"bench-cache: {sys.argv[2]}: {e.strerror}")
