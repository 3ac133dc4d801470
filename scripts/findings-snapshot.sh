#!/usr/bin/env bash
# findings-snapshot — the findings of `check --json` on every fixture and forged image, one JSON file per case, for a
# before/after diff of a change that must not change any finding.
#
#   scripts/findings-snapshot.sh OUTDIR [--images DIR] [--cli DLL]
#
# --images DIR: where the case images are (default OUTDIR/images). When DIR/cases.txt is missing, the cases are
#   written there first by the test-side tool tests/BtrfsRefcheck.Tests/Tools/FindingsSnapshotCases.cs (the committed
#   kernel images, multi-device sets together; testdata/sources; the mkfs fixtures; every ForgeTests row forged on its
#   fixture). Reuse one DIR for the before and the after run: both then check the very same bytes.
# --cli DLL: the btrfs-refcheck.dll to run (default: this tree's Release build, built first).
# Each OUTDIR/CASE.json is the check's JSON with the timing-only "phases" array removed, plus "exit" (the exit code)
# and "stderr".
# Compare two snapshots with: diff -r BEFORE AFTER (images excluded: --exclude=images).
set -euo pipefail
cd "$(dirname "$0")/.."
out=""; images=""; cli=""
while [ $# -gt 0 ]; do
  case "$1" in
    --images) images=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    -*) echo "findings-snapshot: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: scripts/findings-snapshot.sh OUTDIR [--images DIR] [--cli DLL]" >&2; exit 2; }
mkdir -p "$out"; out=$(cd "$out" && pwd)
images=${images:-$out/images}; mkdir -p "$images"; images=$(cd "$images" && pwd)
if [ ! -f "$images/cases.txt" ]; then
  echo "findings-snapshot: writing the cases to $images" >&2
  FINDINGS_SNAPSHOT_IMAGES=$images dotnet test tests/BtrfsRefcheck.Tests -c Release --nologo -v q \
    --filter "FullyQualifiedName~FindingsSnapshotCases" >&2
fi
if [ -z "$cli" ]; then
  dotnet build src/BtrfsRefcheck.Cli -c Release --nologo -v q >&2
  cli=src/BtrfsRefcheck.Cli/bin/Release/net10.0/btrfs-refcheck.dll
fi
n=0
while read -r name paths; do
  [ -n "$name" ] || continue
  set +e
  # shellcheck disable=SC2086
  json=$(dotnet "$cli" check --json $paths 2>"$out/$name.json.stderr")
  rc=$?
  set -e
  printf '%s' "$json" | python3 -c '
import json, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
    d.pop("phases", None)
except ValueError:
    d = {"stdout": text}
d["exit"] = int(sys.argv[1])
d["stderr"] = open(sys.argv[2]).read()
json.dump(d, sys.stdout, indent=1, sort_keys=True)
print()' "$rc" "$out/$name.json.stderr" > "$out/$name.json"
  rm -f "$out/$name.json.stderr"
  n=$((n + 1))
done < "$images/cases.txt"
echo "findings-snapshot: $n cases in $out" >&2
