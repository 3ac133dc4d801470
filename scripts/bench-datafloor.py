#!/usr/bin/env python3
"""The data I/O floor for scripts/bench.sh datacsum, on a one-device image: reads once, in physical order, 8 MiB
preads, and prints "seconds bytes". The page cache is left as the caller set it (bench.sh measures it cold, after
evicting the image, and warm, after one read).

  bench-datafloor.py IMG           every stripe of every DATA chunk (allocated or not)
  bench-datafloor.py --csum IMG    exactly what --check-data-csum reads: every copy of every range the csum tree
                                   covers (SINGLE, DUP and RAID1* data), adjacent ranges merged
"""
import os
import subprocess
import sys
import time


def chunks(img):
    """(logical, length, type, [stripe offsets]) of every chunk."""
    dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "chunk", img],
                          capture_output=True, text=True, check=True).stdout
    out, cur = [], None
    for line in dump.splitlines():
        s = line.split()
        if "CHUNK_ITEM" in line and "key" in s:
            cur = [int(s[s.index("CHUNK_ITEM") + 1].rstrip(")")), 0, "", []]
            out.append(cur)
        elif cur is not None and s[:1] == ["length"]:
            cur[1], cur[2] = int(s[1]), s[s.index("type") + 1]
        elif cur is not None and s[:1] == ["stripe"] and "offset" in s:
            cur[3].append(int(s[s.index("offset") + 1]))
    return out


def csum_ranges(img):
    """Physical (offset, length) of every copy of every csum-covered logical range, merged, sorted."""
    dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "csum", img],
                          capture_output=True, text=True, check=True).stdout
    logical = []
    for line in dump.splitlines():
        s = line.split()
        if s[:2] == ["range", "start"]:
            a, b = int(s[2]), int(s[4])
            if logical and logical[-1][1] == a:
                logical[-1][1] = b
            else:
                logical.append([a, b])
    cs = chunks(img)
    out = []
    for a, b in logical:
        while a < b:
            c = next((c for c in cs if c[0] <= a < c[0] + c[1]), None)
            if c is None:
                break
            end = min(b, c[0] + c[1])
            if any(p in c[2] for p in ("RAID0", "RAID10", "RAID5", "RAID6")):
                sys.exit("bench-datafloor.py --csum: striped data profiles are not mapped here")
            for off in c[3]:
                out.append((off + a - c[0], end - a))
            a = end
    out.sort()
    merged = []
    for off, n in out:
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1] = (merged[-1][0], merged[-1][1] + n)
        else:
            merged.append((off, n))
    return merged


def data_stripes(img):
    """(physical offset, length on the device) of every stripe of every DATA chunk."""
    dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "chunk", img],
                          capture_output=True, text=True, check=True).stdout
    out, cur = [], None
    for line in dump.splitlines():
        s = line.split()
        if "CHUNK_ITEM" in line and "key" in s:
            cur = None
        elif s[:1] == ["length"]:
            kind = s[s.index("type") + 1] if "type" in s else ""
            cur = {"length": int(s[1]), "type": kind, "stripes": []}
        elif cur is not None and s[:1] == ["num_stripes"]:
            cur["num"] = int(s[1])
            cur["sub"] = int(s[s.index("sub_stripes") + 1]) if "sub_stripes" in s else 1
        elif cur is not None and s[:1] == ["stripe"] and "offset" in s and "DATA" in cur["type"]:
            cur["stripes"].append(int(s[s.index("offset") + 1]))
            if len(cur["stripes"]) == cur.get("num", 1):
                n, t, length = cur["num"], cur["type"], cur["length"]
                if "RAID10" in t:
                    per = length * cur["sub"] // n
                elif "RAID0" in t:
                    per = length // n
                elif "RAID5" in t:
                    per = length // (n - 1)
                elif "RAID6" in t:
                    per = length // (n - 2)
                else:
                    per = length
                out.extend((off, per) for off in cur["stripes"])
                cur = None
    return sorted(out)


def main():
    args = sys.argv[1:]
    csum = args[:1] == ["--csum"]
    if csum:
        args = args[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    img = args[0]
    stripes = csum_ranges(img) if csum else data_stripes(img)
    fd = os.open(img, os.O_RDONLY)
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    total = 0
    t0 = time.monotonic()
    for off, length in stripes:
        pos = off
        while pos < off + length:
            n = os.preadv(fd, [view[:min(len(buf), off + length - pos)]], pos)
            if n <= 0:
                break
            total += n
            pos += n
    elapsed = time.monotonic() - t0
    os.close(fd)
    print(f"{elapsed:.3f} {total}")


if __name__ == "__main__":
    main()
