#!/usr/bin/env bash
# Sets everything up (idempotent) and runs every test. Run as root: the data-plane and
# end-to-end tests load XDP programs and build network namespaces (without root they are
# skipped, each saying so).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# `ebpf` is the BPF program itself (no_std, built for bpfel by dataplane/build.rs), not a host crate.
cargo build --workspace --exclude ebpf --all-targets
cargo test --workspace --exclude ebpf
