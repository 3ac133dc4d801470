#!/usr/bin/env python3
"""Populates a mounted btrfs filesystem for the benchmark, deterministically (seeded).

usage: bench-populate.py MOUNTPOINT FILES [--quota]

Layout: the top-level subvolume holds `data/` with FILES files in directories of 500; sizes are a mix of inline
(< 2 KiB, stored in the fs tree) and regular extents (4 KiB - 64 KiB, one in a thousand of 1-4 MiB). Then 8 snapshots
are taken one after the other; after each, about 4% of the files in the newest snapshot are modified (appended,
overwritten in the middle, truncated, or deleted and recreated), a few hundred new files are added and some files
are cloned with reflinks, so shared tree blocks get copied and FULL_BACKREF / shared back-refs appear.
With --quota (qgroups 1/1 and 1/2 made by bench.sh) snapshots 1-4 join qgroup 1/1 and 5-8 qgroup 1/2 (`-i`).
"""
import os, random, subprocess, sys, fcntl, struct

FICLONE = 0x40049409

def payload(rng, n):
    # cheap deterministic, mildly compressible data
    block = bytes(rng.getrandbits(8) for _ in range(64))
    return (block * (n // 64 + 1))[:n]

def size_for(rng):
    r = rng.random()
    if r < 0.55:
        return rng.randint(16, 2000)          # inline extent
    if r < 0.999:
        return rng.randint(4096, 64 * 1024)    # regular extent
    return rng.randint(1, 4) * 1024 * 1024    # large

def populate(root, files, rng):
    data = os.path.join(root, "data")
    os.makedirs(data, exist_ok=True)
    cache = {}
    for i in range(files):
        d = os.path.join(data, f"d{i // 500:05d}")
        if i % 500 == 0:
            os.makedirs(d, exist_ok=True)
        n = size_for(rng)
        key = n // 4096
        if key not in cache:
            cache[key] = payload(rng, max(n, 1))
        with open(os.path.join(d, f"file-{i:07d}-{rng.getrandbits(32):08x}"), "wb") as f:
            f.write(cache[key][:n])

def modify(snap, rng, fraction):
    data = os.path.join(snap, "data")
    dirs = sorted(os.listdir(data))
    for dname in dirs:
        d = os.path.join(data, dname)
        names = sorted(os.listdir(d))
        for name in names:
            if rng.random() >= fraction:
                continue
            p = os.path.join(d, name)
            op = rng.randrange(4)
            if op == 0:
                with open(p, "ab") as f: f.write(b"appended " * rng.randint(1, 40))
            elif op == 1:
                size = os.path.getsize(p)
                with open(p, "r+b") as f:
                    f.seek(rng.randrange(max(size, 1)))
                    f.write(b"X" * rng.randint(1, 8192))
            elif op == 2:
                os.truncate(p, os.path.getsize(p) // 2)
            else:
                os.unlink(p)
                with open(p, "wb") as f: f.write(b"recreated" * rng.randint(1, 300))
        if rng.random() < 0.05 and names:   # reflink a few files within the snapshot
            src = os.path.join(d, names[0])
            if os.path.exists(src):
                with open(src, "rb") as s, open(src + ".reflink", "wb") as t:
                    try: fcntl.ioctl(t.fileno(), FICLONE, s.fileno())
                    except OSError: pass

def main():
    root, files = sys.argv[1], int(sys.argv[2])
    quota = "--quota" in sys.argv[3:]
    rng = random.Random(20261124)
    populate(root, files, rng)
    subprocess.run(["sync"], check=True)
    prev = root
    for s in range(1, 9):
        snap = os.path.join(root, f"snap{s}")
        inherit = ["-i", "1/1" if s <= 4 else "1/2"] if quota else []
        subprocess.run(["btrfs", "subvolume", "snapshot", *inherit, prev, snap], check=True, stdout=subprocess.DEVNULL)
        modify(snap, rng, 0.04)
        extra = os.path.join(snap, "data", "new")
        os.makedirs(extra, exist_ok=True)
        for i in range(300):
            with open(os.path.join(extra, f"n{s}-{i}"), "wb") as f: f.write(payload(rng, rng.randint(100, 20000)))
        subprocess.run(["sync"], check=True)
        prev = snap

if __name__ == "__main__":
    main()
