#!/usr/bin/env bash
# Publishes btrfs-refcheck as a Native AOT executable: artifacts/publish/btrfs-refcheck (or the directory given).
# No JIT at start-up and about 10 MiB of runtime; this is the build the benchmark measures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/publish}
dotnet publish src/BtrfsRefcheck.Cli -c Release --nologo -v q -o "$out" >/dev/null
echo "$out/btrfs-refcheck"
