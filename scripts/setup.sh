#!/usr/bin/env bash
# One-time (idempotent) machine setup for building and testing xlvs.
# Fast when everything is already there: every step checks before it acts.
#   - apt packages the tests and benchmarks drive (iproute2, ethtool, nginx, wrk, nftables, keepalived, trafgen from netsniff-ng, ...)
#   - the pinned nightly for the eBPF build, with rust-src, linked as toolchain "xlvs-ebpf"
#   - bpf-linker built against exactly that nightly's libLLVM (plus the soname symlink it needs at run time)
#   - crate prefetch (host crates and the -Z build-std crates of the eBPF build)
set -euo pipefail
cd "$(dirname "$0")/.."

EBPF_NIGHTLY_DATE=2026-05-19          # the eBPF toolchain: bpf-linker is bound to its libLLVM
EBPF_TOOLCHAIN=xlvs-ebpf              # name the build uses (ebpf toolchain pin, see dataplane/build.rs)
BPF_LINKER_VERSION=0.13.0
APT_PACKAGES=(iproute2 ethtool tcpdump nginx-light wrk nftables iptables keepalived curl procps psmisc bpftool python3 openssl
  prometheus binutils systemd dpkg-dev util-linux build-essential frr bird2 netsniff-ng)

log() { printf '[setup] %s\n' "$*"; }

# --- apt -------------------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages' services (nginx, keepalived, prometheus) from being started
  # by the install; one we create is removed right after, so the machine's own policy is intact.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  made_policy=""
fi

# --- Rust (rustup), when the machine has none ------------------------------------------------
if ! command -v rustup >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/rustup" ]; then
  log "installing rustup (stable toolchain)"
  if apt-cache show rustup >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends rustup >/dev/null
    rustup default stable
  else
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  fi
fi
export PATH="$HOME/.cargo/bin:$PATH"
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# --- eBPF toolchain, pinned ------------------------------------------------------------------
have_date() { rustc +"$1" -vV 2>/dev/null | grep -q "commit-date: $EBPF_NIGHTLY_DATE"; }
if ! have_date "$EBPF_TOOLCHAIN"; then
  if have_date nightly; then src=nightly; else
    log "installing nightly-$EBPF_NIGHTLY_DATE"
    rustup toolchain install "nightly-$EBPF_NIGHTLY_DATE" --profile minimal --component rust-src
    src="nightly-$EBPF_NIGHTLY_DATE"
  fi
  rustup component add rust-src --toolchain "$src"
  rustup toolchain link "$EBPF_TOOLCHAIN" "$(rustc +"$src" --print sysroot)"
  log "toolchain $EBPF_TOOLCHAIN -> $src"
fi
SYSROOT="$(rustc +"$EBPF_TOOLCHAIN" --print sysroot)"
[ -d "$SYSROOT/lib/rustlib/src/rust/library" ] || {
  log "rust-src missing in $SYSROOT"; exit 1; }

# --- bpf-linker against that nightly's LLVM ---------------------------------------------------
LIBLLVM="$(ls "$SYSROOT"/lib/libLLVM.so.* | head -n1)"
LLVM_MAJOR="$(rustc +"$EBPF_TOOLCHAIN" -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
mkdir -p /opt/rust-llvm/lib
ln -sf "$LIBLLVM" /opt/rust-llvm/lib/libLLVM.so
ln -sf "$LIBLLVM" "/opt/rust-llvm/lib/$(basename "$LIBLLVM")"
if ! bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
  log "building bpf-linker $BPF_LINKER_VERSION for LLVM $LLVM_MAJOR (about a minute)"
  LLVM_PREFIX=/opt/rust-llvm cargo install --locked -q "bpf-linker@$BPF_LINKER_VERSION" \
    --no-default-features --features "llvm-$LLVM_MAJOR"
fi

# --- crates ------------------------------------------------------------------------------------
if [ -f Cargo.lock ]; then
  cargo fetch -q
  cargo +"$EBPF_TOOLCHAIN" fetch -q -Z build-std=core --target bpfel-unknown-none 2>/dev/null || true
fi
log "ok"
