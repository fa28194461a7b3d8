#!/usr/bin/env bash
# Sets everything up (idempotent) and runs every test. Run as root: the data-plane and
# end-to-end tests load XDP programs and build network namespaces. A test that cannot run here
# (not root, a tool missing) is counted as skipped, with its reason, never as passed; under
# CI=true a skip fails the run unless tests/expected-skips declares it for this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# `ebpf` is the BPF program itself (no_std, built for bpfel by dataplane/build.rs), not a host crate.
cargo build --workspace --exclude ebpf --all-targets
log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
export XLVS_SKIP_LOG="$skips"
set +e
cargo test --workspace --exclude ebpf --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one result line per binary); a skipped
# test returned early, so libtest counted it as passed.
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
skipped=$(sort -u "$skips" | wc -l)
if ((skipped > 0)); then
  echo "skipped:"
  sort -u "$skips" | sed 's/^/  /'
fi
echo "$((passed - skipped)) passed, ${failed} failed, ${skipped} skipped"
if [ "${CI:-}" = true ] && ((skipped > 0)); then
  unexpected=$(sort -u "$skips" | cut -f1 | while read -r t; do
    grep -qxF "$t" <(grep -v '^#' tests/expected-skips | cut -f1 | sed 's/[[:space:]]*$//') || echo "$t"
  done)
  if [ -n "$unexpected" ]; then
    echo "CI: these tests skipped without being declared in tests/expected-skips:"
    echo "$unexpected" | sed 's/^/  /'
    exit 1
  fi
fi
exit "$status"
