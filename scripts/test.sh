#!/usr/bin/env bash
# Sets everything up (idempotent) and runs every test. Run as root: the data-plane and
# end-to-end tests load XDP programs and build network namespaces (without root they are
# skipped, each saying so).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# `ebpf` is the BPF program itself (no_std, built for bpfel by dataplane/build.rs), not a host crate.
cargo build --workspace --exclude ebpf --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --exclude ebpf 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one result line per binary).
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "${passed} passed, ${failed} failed"
exit "$status"
