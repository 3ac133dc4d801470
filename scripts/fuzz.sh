#!/usr/bin/env bash
# Runs the fuzzer of tests/BtrfsRefcheck.FuzzLib/Fuzz (the one the CI test FuzzTests runs for a fixed list of seeds)
# for as long as asked: mutated copies of the fixture images (made by mkfs.btrfs, and the committed kernel images)
# go through check, dump-tree and dump-super in-process with a time bound. Prints progress, then the totals: cases
# run, cases per kind, exit codes, crashes, hangs, detection rates. Failing inputs are saved under --crash-dir
# (default /tmp/fuzz-crashes) with a case.txt each. Exit 0 when every case ran clean.
#
#   scripts/fuzz.sh [--minutes N] [--cases N] [--seed S] [--fixture NAME[,NAME...]] [--jobs N] [--kind KIND]
#                   [--all-formats] [--crash-dir DIR] [--time-limit SECONDS]
#   scripts/fuzz.sh --fixture kernel-raid1 --seed 13005 --cases 1     # reproduce one case
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mkfs.btrfs >/dev/null 2>&1; then
  echo "fuzz.sh: mkfs.btrfs (btrfs-progs) is needed to make the fixture images" >&2
  exit 2
fi

# A private build output (inside the repository, where the runner finds testdata/), so that a build of the
# solution during a long run does not replace the binaries under it.
out="tests/BtrfsRefcheck.Fuzz/bin/run-$$"
trap 'rm -rf "$out"' EXIT
dotnet build tests/BtrfsRefcheck.Fuzz/BtrfsRefcheck.Fuzz.csproj -c Release --nologo -v quiet -clp:ErrorsOnly -o "$out" >&2
rc=0
dotnet "$out/btrfs-refcheck-fuzz.dll" "$@" || rc=$?
exit $rc
