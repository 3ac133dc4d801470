#!/usr/bin/env bash
# Builds btrfs-refcheck and checks the bundled kernel-written image (testdata/kernel-snapshots.img.gz).
# Extra arguments go to btrfs-refcheck, e.g. scripts/demo.sh --json, or scripts/demo.sh dump-super.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${DEMO_IMAGE:-testdata/kernel-snapshots.img.gz}
dotnet build src/BtrfsRefcheck.Cli -c Release --nologo -v q >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$image" | cp --sparse=always /dev/stdin "$tmp/image.img"
verb=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then verb=("$1"); shift; fi
exec_status=0
dotnet src/BtrfsRefcheck.Cli/bin/Release/net10.0/btrfs-refcheck.dll "${verb[@]}" "$tmp/image.img" "$@" || exec_status=$?
exit $exec_status
