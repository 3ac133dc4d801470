#!/usr/bin/env bash
# Runs every test of btrfs-refcheck and ends with one line: "N passed, N failed, N skipped".
# Installs btrfs-progs (the tests' fixture maker and first oracle, v6.2) with apt-get when it is missing. The second
# oracle, btrfs-progs 6.19, is built by ../shared/btrfs-progs/build.sh when that script exists (and BTRFS_PROGS_619_BIN
# is not already set) and passed to the tests in BTRFS_PROGS_619_BIN; without it the tests look in build.sh's cache
# folder, and skip what needs 6.19 (saying why) when it is not there either.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v mkfs.btrfs >/dev/null 2>&1 || ! command -v btrfs >/dev/null 2>&1; then
  echo "btrfs-progs missing: installing it with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq btrfs-progs >/dev/null \
    || { echo "could not install btrfs-progs" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
fi

if [ -z "${BTRFS_PROGS_619_BIN:-}" ] && [ -z "${BTRFS_PROGS_619_MISSING:-}" ] && [ -f ../shared/btrfs-progs/build.sh ]; then
  if bin619=$(bash ../shared/btrfs-progs/build.sh) && [ -x "$bin619/btrfs" ]; then
    export BTRFS_PROGS_619_BIN=$bin619
    echo "btrfs-progs 6.19 (second oracle): $bin619" >&2
  else
    export BTRFS_PROGS_619_MISSING="../shared/btrfs-progs/build.sh failed"
  fi
fi
if [ -n "${BTRFS_PROGS_619_MISSING:-}" ]; then
  echo "btrfs-progs 6.19 unavailable ($BTRFS_PROGS_619_MISSING): the tests that need it are skipped" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test BtrfsCheck.sln -c Release --nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# dotnet test prints one summary line per test project: "Passed!  - Failed: 0, Passed: 42, Skipped: 0, Total: 42, ..."
summary=$(grep -E '^(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+, +Skipped: +[0-9]+' "$log")
passed=$(grep -Eo 'Passed: +[0-9]+' <<<"$summary" | awk '{s += $2} END {print s + 0}')
failed=$(grep -Eo 'Failed: +[0-9]+' <<<"$summary" | awk '{s += $2} END {print s + 0}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' <<<"$summary" | awk '{s += $2} END {print s + 0}')
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # build failure or crashed test host
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # a run that executed no test is a failure
echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
