#!/usr/bin/env bash
# Runs every test of btrfs-refcheck and ends with one line: "N passed, N failed".
# Installs btrfs-progs (the tests' fixture maker and oracle) with apt-get when it is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v mkfs.btrfs >/dev/null 2>&1 || ! command -v btrfs >/dev/null 2>&1; then
  echo "btrfs-progs missing: installing it with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq btrfs-progs >/dev/null \
    || { echo "could not install btrfs-progs" >&2; echo "0 passed, 1 failed"; exit 1; }
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test BtrfsCheck.sln -c Release --nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# dotnet test prints one summary line per test project: "Passed!  - Failed: 0, Passed: 42, Skipped: 0, Total: 42, ..."
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s += $2} END {print s + 0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s += $2} END {print s + 0}')
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # build failure or crashed test host
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # a run that executed no test is a failure
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
